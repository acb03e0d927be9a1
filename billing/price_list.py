"""kie.ai's published Kling 2.6 prices, the list a new installation starts from.

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
