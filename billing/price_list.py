"""The Kling 2.6 prices a new installation starts from, one set of rows a provider.

Later changes are new `Price` rows with their own `effective_from`, made by an operator.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

KLING_26_EFFECTIVE_FROM = datetime.date(2025, 12, 1)
KLING_26_PRICES = [  # (duration s, sound, USD, credits)
    (5, False, Decimal("0.28"), 55),
    (10, False, Decimal("0.55"), 110),
    (5, True, Decimal("0.55"), 110),
    (10, True, Decimal("1.10"), 220),
]


def seed_kling_26_prices(price_model: Any) -> None:
    """Create the starting price rows if missing (takes the model: migrations pass theirs)."""
    for duration, sound, usd, credits in KLING_26_PRICES:
        price_model.objects.get_or_create(
            provider="kie",
            model="kling-2.6",
            duration=duration,
            sound=sound,
            effective_from=KLING_26_EFFECTIVE_FROM,
            defaults={"usd": usd, "credits": credits},
        )


# The official Kling API bills a team's own account (resource packs bought under its contract)
# and reports no credits, so these rows start at kie.ai's dollar figures as a placeholder until
# an operator enters the account's own; `credits` 0 says the provider reports none.
KLING_API_EFFECTIVE_FROM = datetime.date(2025, 12, 1)
KLING_API_PRICES = [(duration, sound, usd, 0) for duration, sound, usd, _ in KLING_26_PRICES]


def seed_kling_api_prices(price_model: Any) -> None:
    """Create the official Kling API's starting rows if missing (as `seed_kling_26_prices`)."""
    for duration, sound, usd, credits in KLING_API_PRICES:
        price_model.objects.get_or_create(
            provider="kling",
            model="kling-2.6",
            duration=duration,
            sound=sound,
            effective_from=KLING_API_EFFECTIVE_FROM,
            defaults={"usd": usd, "credits": credits},
        )
