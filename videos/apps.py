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


def start_job_clock(sender: Any, proc_name: str = "", **kwargs: Any) -> None:
    """Each django-q2 worker process runs the job clock (`videos.jobs.clock`) beside its tasks.

    Not where tasks run synchronously (Q_SYNC, the tests): the worker function then runs in the
    calling process, once a task.
    """
    import multiprocessing

    from videos.jobs.clock import clock_start

    if multiprocessing.parent_process() is not None:
        clock_start()


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
        from django_q.signals import (
            post_execute_in_worker,
            post_spawn,
            pre_enqueue,
            pre_execute,
        )

        from billing.services import budget_alerts_recorded
        from config import logs
        from videos import checks  # noqa: F401  (registers them)
        from videos.api import schema  # noqa: F401  (registers the token scheme)
        from videos.webhooks import alerts

        # A worker task logs under the id of the request that enqueued it.
        pre_enqueue.connect(logs.task_carry_request_id, dispatch_uid="logs.carry")
        pre_execute.connect(logs.task_adopt_request_id, dispatch_uid="logs.adopt")
        post_execute_in_worker.connect(logs.task_restore_request_id, dispatch_uid="logs.restore")

        post_migrate.connect(ensure_sweep_schedule, sender=self)
        post_spawn.connect(start_job_clock, dispatch_uid="videos.job_clock")
        user_logged_in.connect(ensure_personal_team, dispatch_uid="videos.personal_team")
        budget_alerts_recorded.connect(alerts.alerts_recorded, dispatch_uid="videos.alerts")


class ReelforgeAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the Reelforge site as `admin.site` (INSTALLED_APPS names it)."""

    default = False
    default_site = "videos.admin_site.ReelforgeAdminSite"
