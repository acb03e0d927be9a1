from django.db import migrations

from billing.price_list import seed_kling_api_prices


def seed_prices(apps, schema_editor):
    seed_kling_api_prices(apps.get_model("billing", "Price"))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_budget_alerts"),
    ]

    operations = [
        migrations.RunPython(seed_prices, migrations.RunPython.noop),
    ]
