"""The rendering limits of each channel, from settings."""

from __future__ import annotations

from django.conf import settings

from notifier.channels import spec
from notifier.rendering import RenderLimits


def render_limits(*, channel: str) -> RenderLimits:
    """Email may be large (256 KiB by default); push, SMS and in-app text stay small (4 KiB)."""
    return RenderLimits(
        max_output_bytes=settings.RENDER_MAX_EMAIL_BYTES
        if spec(channel).large
        else settings.RENDER_MAX_TEXT_BYTES,
        max_loop_iterations=settings.RENDER_MAX_LOOP_ITERATIONS,
        max_seconds=settings.RENDER_MAX_SECONDS,
    )
