"""The life of a generation job, one module a step: create, submit, callback/poll (outcome),
retrieve and settle, plus what people do to jobs (operator) and what keeps them moving
(recovery, the sweep).

Every state change is one conditional UPDATE (`WHERE state = <from>`) plus a `JobEvent`
(`states.transition`), so two workers, a late callback and a poll can race without doing the
work twice. Work that talks to the provider runs in django-q2 workers (`videos.tasks`); nothing
here waits for rendering in a web request. The names below are the pipeline's public face.
"""

from videos.jobs.clock import jobs_poll_due, tick
from videos.jobs.create import (
    BudgetExceeded,
    CreditsShort,
    JobSpec,
    balance_check,
    budget_check,
    credits_check,
    job_create,
    job_inputs,
    job_prepare,
    job_save,
    jobs_queue,
)
from videos.jobs.operator import (
    job_adopt_task,
    job_cancel,
    job_confirm_not_accepted,
    job_give_up,
    job_retrieval_retry,
    job_retry,
)
from videos.jobs.outcome import (
    callback_accept,
    job_apply_status,
    job_awaits_outcome,
    job_handle_callback,
    job_poll,
    job_poll_by_id,
)
from videos.jobs.recovery import submission_recover, sweep
from videos.jobs.retrieve import job_retrieve
from videos.jobs.states import note, transition
from videos.jobs.submit import (
    job_submit,
    submissions_pause,
    submissions_resume,
    submissions_resume_if_credits_returned,
)

__all__ = [
    "BudgetExceeded",
    "CreditsShort",
    "JobSpec",
    "balance_check",
    "budget_check",
    "callback_accept",
    "credits_check",
    "job_adopt_task",
    "job_apply_status",
    "job_awaits_outcome",
    "job_cancel",
    "job_confirm_not_accepted",
    "job_create",
    "job_give_up",
    "job_handle_callback",
    "job_inputs",
    "job_poll",
    "job_poll_by_id",
    "job_prepare",
    "job_retrieval_retry",
    "job_retrieve",
    "job_retry",
    "job_save",
    "job_submit",
    "jobs_poll_due",
    "jobs_queue",
    "note",
    "submission_recover",
    "submissions_pause",
    "submissions_resume",
    "submissions_resume_if_credits_returned",
    "sweep",
    "tick",
    "transition",
]
