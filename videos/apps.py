from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


def ensure_sweep_schedule(sender: AppConfig, **kwargs: Any) -> None:
    """Keep the pipeline's periodic sweep scheduled (polling, recovery, held submissions)."""
    from django.conf import settings
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="videos.sweep",
        defaults={
            "func": "videos.tasks.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.PIPELINE["SWEEP_INTERVAL_MINUTES"],
            "repeats": -1,
        },
    )


def ensure_personal_team(sender: Any, user: Any, **kwargs: Any) -> None:
    """Every user has their own team from their first sign-in (admin, portal or browsable API)."""
    from videos.services import personal_team_ensure

    personal_team_ensure(user=user)


class VideosConfig(AppConfig):
    default = True
    default_auto_field = "django.db.models.BigAutoField"
    name = "videos"
    verbose_name = "Video production"

    def ready(self) -> None:
        from videos import checks  # noqa: F401  (registers them)
        from videos.api import schema  # noqa: F401  (registers the token scheme)

        post_migrate.connect(ensure_sweep_schedule, sender=self)
        user_logged_in.connect(ensure_personal_team, dispatch_uid="videos.personal_team")


class ReelforgeAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the Reelforge site as `admin.site` (INSTALLED_APPS names it)."""

    default = False
    default_site = "videos.admin_site.ReelforgeAdminSite"
