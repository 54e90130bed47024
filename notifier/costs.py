"""What a provider charges for one accepted attempt: a price per unit (ANALYTICS_COSTS: per
channel, per provider, a decimal string in ANALYTICS_CURRENCY) times the units the channel
charges for (notifier.channels.CostUnit), in millionths of the currency (integers add up
exactly across millions of rows; floats would not)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from notifier.channels import CostUnit, spec
from notifier.sms_segments import sms_segments

MICROS = Decimal(1_000_000)

# ANALYTICS_COSTS: {"sms": {"twilio": "0.0083"}, ...}
Prices = Mapping[str, Mapping[str, str]]


def cost_units(channel: str, *, body: str = "", devices: int = 0) -> int:
    """The units one accepted attempt on `channel` is charged for: 1 message, the SMS segments
    of the rendered `body`, the `devices` that accepted it, or 0 (free)."""
    unit = spec(channel).cost_unit
    if unit is CostUnit.MESSAGE:
        return 1
    if unit is CostUnit.SEGMENT:
        return sms_segments(body).count
    if unit is CostUnit.DEVICE:
        return devices
    return 0


def unit_price(prices: Prices, *, channel: str, provider: str) -> Decimal:
    """The price of one unit (0 when not configured). ValueError for a price that is not a
    non-negative decimal."""
    raw = prices.get(channel, {}).get(provider, "0")
    try:
        price = Decimal(str(raw))
    except InvalidOperation as exc:
        raise ValueError(f"price for {channel}/{provider} is not a decimal: {raw!r}") from exc
    if not price.is_finite() or price < 0:
        raise ValueError(f"price for {channel}/{provider} must be >= 0: {raw!r}")
    return price


def cost_micros(prices: Prices, *, channel: str, provider: str, units: int) -> int:
    """price x units in millionths of the currency, rounded half up."""
    if units <= 0:
        return 0
    total = unit_price(prices, channel=channel, provider=provider) * units * MICROS
    return int(total.to_integral_value(rounding=ROUND_HALF_UP))


def prices_problems(prices: object) -> list[str]:
    """What is wrong with an ANALYTICS_COSTS value (empty: nothing)."""
    if not isinstance(prices, Mapping):
        return ["must be a mapping of channel to {provider: price}"]
    problems: list[str] = []
    for channel, by_provider in prices.items():
        try:
            spec(str(channel))
        except ValueError:
            problems.append(f"unknown channel {channel!r}")
            continue
        if not isinstance(by_provider, Mapping):
            problems.append(f"{channel}: must be a mapping of provider to price")
            continue
        for provider in by_provider:
            try:
                unit_price(prices, channel=str(channel), provider=str(provider))
            except ValueError as exc:
                problems.append(str(exc))
    return problems
