"""What one render may cost: output size, loop iterations and wall-clock time.

A template and its variables come from API callers, and a small template can ask for a huge
amount of work (three nested loops over a 100-item list are 10^6 iterations; a filter such as
`ljust:"999999999"` allocates a gigabyte). `render` opens a budget for the duration of one
message; the nodes and filters of our template library charge it and raise
`RenderLimitExceeded` before the work is done, not after.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

# Defaults; the apps layer reads the real values from settings (RENDER_* in config/settings).
DEFAULT_MAX_EMAIL_BYTES = 256 * 1024
DEFAULT_MAX_TEXT_BYTES = 4 * 1024  # push, SMS, in-app
DEFAULT_MAX_LOOP_ITERATIONS = 50_000
DEFAULT_MAX_SECONDS = 2.0


class RenderError(ValueError):
    """A template that cannot be rendered with these variables."""


class RenderLimitExceeded(RenderError):
    """The render would produce too much output, loop too often or take too long."""


@dataclass(frozen=True)
class RenderLimits:
    max_output_bytes: int = DEFAULT_MAX_EMAIL_BYTES
    max_loop_iterations: int = DEFAULT_MAX_LOOP_ITERATIONS
    max_seconds: float = DEFAULT_MAX_SECONDS


class RenderBudget:
    """The running cost of one message's render (every part of it together)."""

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.output_chars = 0
        self.iterations = 0
        self.deadline = time.monotonic() + limits.max_seconds
        # Set when a limit was hit, even if a template tag swallowed the exception (`{% if %}`
        # turns any error in its condition into False): `render` checks it after each part.
        self.exceeded: RenderLimitExceeded | None = None

    def _fail(self, message: str) -> RenderLimitExceeded:
        self.exceeded = RenderLimitExceeded(message)
        return self.exceeded

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise self._fail(f"rendering took longer than {self.limits.max_seconds:g} s")

    def check_size(self, chars: int) -> None:
        """Raise if a single value of `chars` characters cannot fit in the output."""
        if chars > self.limits.max_output_bytes:
            raise self._fail(
                f"the rendered message would exceed {self.limits.max_output_bytes} bytes"
            )

    def charge_output(self, chars: int) -> None:
        # Characters are counted as they are produced (a lower bound on bytes): a loop that
        # prints a large variable is stopped as soon as the total passes the limit.
        self.output_chars += chars
        self.check_size(self.output_chars)
        self.check_time()

    def charge_iterations(self, count: int) -> None:
        # Charged when a loop starts, for all its items: the loop never runs if it cannot fit.
        self.iterations += count
        if self.iterations > self.limits.max_loop_iterations:
            raise self._fail(
                f"loops would run more than {self.limits.max_loop_iterations} iterations"
            )
        self.check_time()


_active: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


def active_budget() -> RenderBudget | None:
    """The budget of the render running in this thread, if any."""
    return _active.get()


@contextlib.contextmanager
def budget_scope(limits: RenderLimits) -> Iterator[RenderBudget]:
    budget = RenderBudget(limits)
    token = _active.set(budget)
    try:
        yield budget
    finally:
        _active.reset(token)
