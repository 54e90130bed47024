"""SMS segment counting (notifier/sms_segments.py) against the standard's figures, and its
alphabet against an independent GSM 03.38 codec (the `gsm0338` package)."""

from __future__ import annotations

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec
import pytest

from notifier.sms_segments import GSM7_BASIC, GSM7_EXTENSION, sms_segments


@pytest.mark.parametrize(
    ("body", "encoding", "count"),
    [
        ("", "gsm7", 1),
        ("Your code is 123456", "gsm7", 1),
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),  # 2 x 153
        ("a" * 307, "gsm7", 3),
        ("€" * 80, "gsm7", 1),  # 160 septets
        # 81 x 2 = 162 septets: 76 a segment (152; a 77th would straddle 153), so 2
        ("€" * 81, "gsm7", 2),
        # 152 septets of "a", then "€" cannot fit in the first segment's 153: it moves
        ("a" * 152 + "€" + "a" * 10, "gsm7", 2),
        ("a" * 152 + "€" + "a" * 152 + "€", "gsm7", 3),
        ("Привет", "ucs2", 1),
        ("ж" * 70, "ucs2", 1),
        ("ж" * 71, "ucs2", 2),
        ("ж" * 134, "ucs2", 2),  # 2 x 67
        ("ж" * 135, "ucs2", 3),
        ("😀" * 35, "ucs2", 1),  # 70 UTF-16 units
        # 36 emoji = 72 units: 33 a segment (66; a 34th would straddle 67), so 2
        ("😀" * 36, "ucs2", 2),
        ("😀" * 67, "ucs2", 3),  # 33 + 33 + 1
        # One character outside GSM-7 turns the whole body UCS-2
        ("a" * 69 + "ж", "ucs2", 1),
        ("a" * 70 + "ж", "ucs2", 2),
    ],
)
def test_segments_as_the_standard_counts_them(body: str, encoding: str, count: int) -> None:
    segments = sms_segments(body)

    assert (segments.encoding, segments.count) == (encoding, count)


def test_units_are_septets_or_utf16_code_units() -> None:
    assert sms_segments("a€").units == 3
    assert sms_segments("ж😀").units == 3


def test_the_alphabet_is_the_codecs() -> None:
    # Every character of the Basic Multilingual Plane the codec writes in one septet is in the
    # basic set, in two septets in the extension table, and nothing else is in either
    single, double = set(), set()
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        try:
            encoded = chr(code).encode("gsm03.38")
        except UnicodeError:
            continue
        (single if len(encoded) == 1 else double).add(chr(code))
    single.discard("\x1b")  # the escape to the extension table, not a character to send

    assert single == GSM7_BASIC
    assert double == GSM7_EXTENSION
