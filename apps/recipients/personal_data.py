"""Finding a recipient's contact data in free text and JSON, for GDPR erasure.

Provider answers echo addresses ("550 5.1.1 <carol@example.net>: user unknown"), numbers and
device tokens into delivery reasons, event details and dead letters. Erasure replaces them:
- in rows that belong to the erased recipient alone (their deliveries, events, dead letters,
  single-recipient notifications), the recipient's known values and anything shaped like an
  email address or an E.164 number (an address the recipient had before a profile change is
  as personal as the current one);
- in rows shared with other recipients (a bulk notification's variables), only the
  recipient's known values, so that nobody else's data is touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ERASED = "[erased]"
EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
E164_RE = re.compile(r"\+[1-9]\d{6,14}\b")


@dataclass
class PersonalData:
    """The values to erase: email addresses, phone numbers, device tokens (case-insensitive)."""

    values: set[str] = field(default_factory=set)
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def add(self, values: Iterable[str]) -> None:
        self.values.update(v.strip() for v in values if v and v.strip())
        self._pattern = None

    def _known(self) -> re.Pattern[str] | None:
        if self._pattern is None and self.values:
            # Longest first: a token that contains another value is replaced whole.
            alternatives = sorted(self.values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives), re.IGNORECASE)
        return self._pattern

    def scrub_text(self, text: str, *, own: bool) -> str:
        """`text` without the known values; with `own` (a row of this recipient alone),
        without anything shaped like an address or a number either."""
        if not text:
            return text
        known = self._known()
        if known is not None:
            text = known.sub(ERASED, text)
        if own:
            text = E164_RE.sub(ERASED, EMAIL_RE.sub(ERASED, text))
        return text

    def scrub_json(self, value: Any, *, own: bool) -> Any:
        """`value` (parsed JSON) with every string, keys included, scrubbed."""
        if isinstance(value, str):
            return self.scrub_text(value, own=own)
        if isinstance(value, list):
            return [self.scrub_json(v, own=own) for v in value]
        if isinstance(value, dict):
            return {
                self.scrub_text(str(k), own=own): self.scrub_json(v, own=own)
                for k, v in value.items()
            }
        return value
