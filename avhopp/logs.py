"""Structured application logs: one key=value line per event, with the request id.

Log calls pass ids and codes only; personal data never reaches a log line (DOMAIN.md).
"""

from __future__ import annotations

import logging
import sys

from flask import g, has_app_context


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_app_context() else "-"
        return True


FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s request=%(request_id)s msg=%(message)s"


def configure(level: str) -> None:
    root = logging.getLogger("avhopp")
    if any(getattr(h, "_avhopp", False) for h in root.handlers):
        root.setLevel(level)
        return
    if logging.getLogger().handlers:
        # The host process already handles logging (pytest's capture, an embedding server):
        # let records propagate to it instead of adding a second handler and cutting it off.
        # Without this, propagate=False below hides every record from caplog (test_errors).
        root.setLevel(level)
        root.propagate = True
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    handler._avhopp = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
