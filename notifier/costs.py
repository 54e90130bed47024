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
# The highest price of one unit accepted (a larger one is a typo: "1e13" for "1e-3").
MAX_UNIT_PRICE = Decimal(1000)
# The most one attempt is recorded as costing (a million of the currency: MAX_UNIT_PRICE times
# a thousand units), so that the rollup's bigint sums of millions of them can never overflow.
MAX_COST_MICROS = 10**12

# ANALYTICS_COSTS: {"sms": {"twilio": "0.0083"}, ...}; decimal strings as configured, Decimals
# once parsed (prices_parse, at settings load).
Prices = Mapping[str, Mapping[str, "str | Decimal"]]


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
    decimal from 0 to MAX_UNIT_PRICE (or a channel's entry that is not a mapping)."""
    by_provider = prices.get(channel, {})
    if not isinstance(by_provider, Mapping):
        raise ValueError(f"{channel}: must be a mapping of provider to price")  # noqa: TRY004
    raw = by_provider.get(provider, "0")
    if isinstance(raw, Decimal) and raw.is_finite() and 0 <= raw <= MAX_UNIT_PRICE:
        return raw  # parsed at settings load
    # ValueError for every bad value, a wrong type included: one error the callers catch.
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise ValueError(f"price for {channel}/{provider} is not a decimal: {raw!r}")  # noqa: TRY004
    try:
        price = Decimal(str(raw))
    except InvalidOperation as exc:
        raise ValueError(f"price for {channel}/{provider} is not a decimal: {raw!r}") from exc
    if not price.is_finite() or price < 0:
        raise ValueError(f"price for {channel}/{provider} must be >= 0: {raw!r}")
    if price > MAX_UNIT_PRICE:
        raise ValueError(
            f"price for {channel}/{provider} must be <= {MAX_UNIT_PRICE} a unit: {raw!r}"
        )
    return price


def cost_micros(prices: Prices, *, channel: str, provider: str, units: int) -> int:
    """price x units in millionths of the currency, rounded half up, at most MAX_COST_MICROS.
    ValueError for a bad price (unit_price)."""
    if units <= 0:
        return 0
    total = unit_price(prices, channel=channel, provider=provider) * units * MICROS
    return min(int(total.to_integral_value(rounding=ROUND_HALF_UP)), MAX_COST_MICROS)


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


def prices_parse(prices: object) -> dict[str, dict[str, Decimal]]:
    """ANALYTICS_COSTS checked and parsed once (at settings load): {channel: {provider:
    Decimal}}. ValueError naming every problem (prices_problems)."""
    problems = prices_problems(prices)
    if problems:
        raise ValueError("; ".join(problems))
    assert isinstance(prices, Mapping)  # noqa: S101 - prices_problems said so
    return {
        str(channel): {
            str(provider): unit_price(prices, channel=str(channel), provider=str(provider))
            for provider in by_provider
        }
        for channel, by_provider in prices.items()
    }
