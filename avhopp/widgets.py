"""Faster, byte-identical stand-ins for parts of WTForms' widgets, installed once at start."""

from __future__ import annotations

from typing import Any

import wtforms.widgets
from markupsafe import Markup, escape
from wtforms.widgets import core

# WTForms' own function, kept for the equivalence test (captured before anything replaces it).
ORIGINAL = core.html_params
_clean_key = core.clean_key
# WTForms' choice of how to call a Select class's render_option: it inspects the method's
# signature (inspect.signature) every time a select is rendered; the answer depends only on
# the class, so it is kept per class.
_ORIGINAL_DISPATCH = core.Select.__dict__["_dispatch_render_option"].__func__
_dispatch_by_class: dict[type, Any] = {}


def _dispatch_render_option(cls: type) -> Any:
    render = _dispatch_by_class.get(cls)
    if render is None:
        render = _dispatch_by_class[cls] = _ORIGINAL_DISPATCH(cls)
    return render


def html_params(**kwargs: Any) -> Markup:
    """The same attribute string as `wtforms.widgets.html_params`, without Markup.format.

    WTForms formats every attribute through `Markup.format` (a full `string.Formatter` pass);
    on a track page with about a hundred inputs and options that was a fifth of the CPU. Here
    keys and values are escaped exactly as there (keys too; values already Markup are kept,
    with `"` spelled `&quot;`) and joined with plain string operations.
    """
    parts = []
    for key, value in sorted(kwargs.items()):
        name = str(escape(_clean_key(key)))
        if value is True:
            parts.append(name)
        elif value is not False:
            parts.append(f'{name}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    # Every key and value in `parts` was escaped above.
    return Markup(" ".join(parts))  # noqa: S704  # nosec


def install() -> None:
    """Replace WTForms' function wherever WTForms looks it up (idempotent)."""
    core.html_params = html_params
    wtforms.widgets.html_params = html_params
    core.Input.html_params = staticmethod(html_params)
    core.Button.html_params = staticmethod(html_params)
    core.Select._dispatch_render_option = classmethod(_dispatch_render_option)  # type: ignore[method-assign, assignment]
