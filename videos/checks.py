"""Start-up checks of settings that only make sense together."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def download_ends_before_the_task_timeout(**kwargs: Any) -> list[Error]:
    """django-q2 kills a task at its timeout and runs it again after `retry`: a download that can
    outlive the task would be cut off mid-file and then started twice."""
    conf = settings.PIPELINE
    longest = (
        conf["RESULT_DOWNLOAD_TIMEOUT_SECONDS"]
        + conf["RESULT_CONNECT_TIMEOUT_SECONDS"]
        + conf["RESULT_READ_TIMEOUT_SECONDS"]
    )
    if longest >= settings.Q_CLUSTER["timeout"]:
        return [
            Error(
                f"A result download may take {longest} s (RESULT_DOWNLOAD_TIMEOUT_SECONDS plus the "
                f"connect and read timeouts), not less than Q_TASK_TIMEOUT_SECONDS "
                f"({settings.Q_CLUSTER['timeout']} s).",
                hint="Lower RESULT_DOWNLOAD_TIMEOUT_SECONDS or raise Q_TASK_TIMEOUT_SECONDS.",
                id="reelforge.E001",
            )
        ]
    return []


@register()
def admin_sign_in_rate_is_readable(**kwargs: Any) -> list[Error]:
    from django.core.exceptions import ImproperlyConfigured

    from videos.admin_site import parse_rate

    try:
        parse_rate(settings.ADMIN_LOGIN_THROTTLE)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="reelforge.E002")]
    return []


@register()
def submission_limits_admit_a_task(**kwargs: Any) -> list[Error]:
    """A rate limit or in-flight cap of 0 would hold every job forever (and divide by nothing)."""
    conf = settings.PIPELINE
    wrong = [
        name
        for name, setting in (
            ("KIE_RATE_LIMIT_TASKS", "RATE_LIMIT_TASKS"),
            ("KIE_RATE_LIMIT_WINDOW_SECONDS", "RATE_LIMIT_WINDOW_SECONDS"),
            ("KIE_MAX_IN_FLIGHT", "MAX_IN_FLIGHT"),
        )
        if conf[setting] < 1  # type: ignore[literal-required]
    ]
    return [
        Error(f"{name} must be at least 1.", id="reelforge.E003", hint="Unset it for the default.")
        for name in wrong
    ]


@register()
def stale_submission_outlasts_create_task(**kwargs: Any) -> list[Error]:
    """A job still `submitting` after JOB_SUBMIT_STALE_SECONDS is taken for one whose worker
    died: a createTask still waiting for its answer must not be taken for one."""
    longest = settings.KIE_CONNECT_TIMEOUT + settings.KIE_READ_TIMEOUT
    if settings.PIPELINE["SUBMIT_STALE_SECONDS"] <= longest:
        return [
            Error(
                f"JOB_SUBMIT_STALE_SECONDS ({settings.PIPELINE['SUBMIT_STALE_SECONDS']}) must be "
                f"longer than a createTask may take ({longest:g} s: KIE_CONNECT_TIMEOUT plus "
                f"KIE_READ_TIMEOUT).",
                hint="Unset JOB_SUBMIT_STALE_SECONDS for the default (those timeouts + 30 s).",
                id="reelforge.E004",
            )
        ]
    return []
