from django.db import migrations

from billing.price_list import seed_kling_26_prices
from config.append_only import append_only_trigger


def seed_prices(apps, schema_editor):
    seed_kling_26_prices(apps.get_model("billing", "Price"))


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        append_only_trigger("billing_ledgerentry"),
        migrations.RunPython(seed_prices, migrations.RunPython.noop),
    ]
