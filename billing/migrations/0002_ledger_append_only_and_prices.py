import datetime
from decimal import Decimal

from django.db import migrations

from videos.append_only import append_only_trigger

# kie.ai's published Kling 2.6 prices. Later changes are new rows with their own date.
KLING_26_PRICES = [
    (5, False, Decimal("0.28"), 55),
    (10, False, Decimal("0.55"), 110),
    (5, True, Decimal("0.55"), 110),
    (10, True, Decimal("1.10"), 220),
]


def seed_prices(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    for duration, sound, usd, credits in KLING_26_PRICES:
        Price.objects.get_or_create(
            provider="kie",
            model="kling-2.6",
            duration=duration,
            sound=sound,
            effective_from=datetime.date(2025, 12, 1),
            defaults={"usd": usd, "credits": credits},
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        append_only_trigger("billing_ledgerentry"),
        migrations.RunPython(seed_prices, migrations.RunPython.noop),
    ]
