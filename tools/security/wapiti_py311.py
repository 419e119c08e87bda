"""Runs Debian's wapiti 3.0.4 with its URL-exclusion pattern fixed for Python 3.11.

wapiti 3.0.4 appends the inline flags `(?ms)` at the end of the pattern it builds for `-x`,
which Python 3.11 refuses ("global flags not at the start"); upstream moved them to the front.
Run with Debian's /usr/bin/python3, where wapitiCore is installed.
"""

import re
import sys

from wapitiCore.main.wapiti import wapiti_main
from wapitiCore.net import crawler


def wildcard_translate(pattern: str) -> "re.Pattern[str]":
    return re.compile("(?ms)" + "".join(".*" if c == "*" else re.escape(c) for c in pattern)
                      + r"\Z")


crawler.wildcard_translate = wildcard_translate
sys.argv[0] = "wapiti"
sys.exit(wapiti_main())
