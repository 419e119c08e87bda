"""Public track codes (AV-7KQ2M, AN-3HX9P): random, non-sequential, easy to read aloud."""

from __future__ import annotations

import re
import secrets
from typing import Final

# No 0/O, 1/I/L: a code is read over the phone and copied by hand.
ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH: Final = 5
PREFIXES: Final[dict[str, str]] = {"defector": "AV", "relative": "AN"}
_CODE_RE: Final = re.compile(
    rf"(?:{'|'.join(PREFIXES.values())})-[{ALPHABET}]{{{LENGTH}}}", re.ASCII
)


def new_code(kind: str) -> str:
    """A fresh random code for a track of `kind` (31^5, about 28.6 million per prefix).

    Uniqueness is the caller's job (a lookup before use, and the unique constraint after).
    """
    prefix = PREFIXES[kind]
    return prefix + "-" + "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise_code(raw: str) -> str | None:
    """The canonical form of a typed code, or None when it cannot be one.

    Accepts lower case, surrounding blanks and a missing dash ("av7kq2m").
    """
    text = raw.strip().upper().replace(" ", "")
    if len(text) == LENGTH + 2 and "-" not in text:
        text = text[:2] + "-" + text[2:]
    return text if _CODE_RE.fullmatch(text) else None
