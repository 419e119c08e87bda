"""Track codes: random, prefixed by kind, without look-alike characters."""

from __future__ import annotations

import re

from avhopp.casework.codes import ALPHABET, new_code, normalise_code


def test_codes_have_the_kind_prefix_and_five_characters():
    assert re.fullmatch(r"AV-[2-9A-Z]{5}", new_code("defector"))
    assert re.fullmatch(r"AN-[2-9A-Z]{5}", new_code("relative"))


def test_the_alphabet_has_no_look_alikes():
    assert not set("01OIL") & set(ALPHABET)


def test_codes_are_not_sequential_or_repeated():
    codes = [new_code("defector") for _ in range(2000)]
    assert len(set(codes)) > 1990
    assert codes != sorted(codes)


def test_typed_codes_are_normalised_and_garbage_refused():
    assert normalise_code(" av-7kq2m ") == "AV-7KQ2M"
    assert normalise_code("an3hx9p") == "AN-3HX9P"
    for bad in ("AV-7KQ2", "XX-7KQ2M", "AV-7KQ2O", "'; drop table track --", ""):
        assert normalise_code(bad) is None
