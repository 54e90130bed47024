"""How many SMS segments a body costs, as carriers count them (3GPP TS 23.038 / 23.040).

A body written entirely in the GSM 03.38 default alphabet (with its extension table) travels
as 7-bit septets: 160 in one message, 153 a segment once it needs several (the other 7 carry the
concatenation header). An extension character (`€`, `{`, `[`, ...) is two septets (escape +
character) and is never split across segments. Anything else makes the whole body UCS-2:
70 UTF-16 code units in one message, 67 a segment, and a surrogate pair (an emoji) never split.

Hand-written because the counting rule is short and fixed by the standard; the `gsm0338` codec
on PyPI knows the alphabet but not the segment rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The default alphabet, without ESC (0x1B), which is only the escape to the extension table.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: two septets each.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_SEGMENT = 160, 153
UCS2_SINGLE, UCS2_SEGMENT = 70, 67

Encoding = Literal["gsm7", "ucs2"]


@dataclass(frozen=True)
class Segments:
    encoding: Encoding
    count: int
    units: int  # septets (gsm7) or UTF-16 code units (ucs2) in the whole body


def _units(body: str) -> tuple[Encoding, list[int]]:
    """Each character's width in the encoding the body needs."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body):
        return "gsm7", [2 if c in GSM7_EXTENSION else 1 for c in body]
    return "ucs2", [2 if ord(c) > 0xFFFF else 1 for c in body]


def sms_segments(body: str) -> Segments:
    """The encoding and segment count of `body` (an empty body is one message)."""
    encoding, widths = _units(body)
    single, segment = (
        (GSM7_SINGLE, GSM7_SEGMENT) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_SEGMENT)
    )
    total = sum(widths)
    if total <= single:
        return Segments(encoding, 1, total)
    count, used = 1, 0
    for width in widths:
        if used + width > segment:  # a two-unit character moves whole to the next segment
            count, used = count + 1, 0
        used += width
    return Segments(encoding, count, total)
