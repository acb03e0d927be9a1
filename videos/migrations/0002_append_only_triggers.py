from django.db import migrations

from config.append_only import append_only_trigger


class Migration(migrations.Migration):
    dependencies = [("videos", "0001_initial")]

    operations = [
        append_only_trigger("videos_jobevent"),
        append_only_trigger("videos_promptversion"),
    ]
