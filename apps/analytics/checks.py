"""System checks (`manage.py check`, run at every start) for the analytics settings: a price
that is not a decimal would otherwise fail every send that costs something."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from notifier.costs import prices_problems


@register()
def analytics_costs_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """ANALYTICS_COSTS: {channel: {provider: "decimal string"}}, every price >= 0."""
    return [
        Error(f"ANALYTICS_COSTS: {problem}", id="analytics.E001")
        for problem in prices_problems(settings.ANALYTICS_COSTS)
    ]
