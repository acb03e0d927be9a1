from __future__ import annotations

from django.urls import path

from videos.portal import batch_views, home, jobs, library, projects, spend, team, webhook_views

app_name = "portal"

urlpatterns = [
    path("", home.home, name="home"),
    path("teams/switch/", home.team_switch, name="team-switch"),
    path(
        "invitations/<int:invitation_id>/<str:answer>/",
        home.invitation_answer,
        name="invitation-answer",
    ),
    path("projects/new/", home.project_create, name="project-create"),
    path("projects/<int:project_id>/", projects.project_page, name="project"),
    path("projects/<int:project_id>/jobs/", projects.project_jobs, name="project-jobs"),
    path("projects/<int:project_id>/clips/", projects.project_gallery, name="project-gallery"),
    path("projects/<int:project_id>/clips/new/", projects.clip_create, name="clip-create"),
    path("projects/<int:project_id>/estimate/", projects.clip_estimate, name="clip-estimate"),
    path("projects/<int:project_id>/budget/", spend.budget_set, name="budget-set"),
    path("projects/<int:project_id>/batches/new/", batch_views.batch_new, name="batch-new"),
    path("projects/<int:project_id>/webhooks/", webhook_views.webhooks_page, name="webhooks"),
    path(
        "projects/<int:project_id>/webhooks/<int:endpoint_id>/<str:action>/",
        webhook_views.webhook_action,
        name="webhook-action",
    ),
    path("batches/<int:batch_id>/", batch_views.batch_page, name="batch"),
    path(
        "batches/<int:batch_id>/progress/",
        batch_views.batch_progress_fragment,
        name="batch-progress",
    ),
    path("batches/<int:batch_id>/<str:action>/", batch_views.batch_action, name="batch-action"),
    path("jobs/<uuid:job_id>/", jobs.job_page, name="job"),
    path("jobs/<uuid:job_id>/status/", jobs.job_status, name="job-status"),
    path("jobs/<uuid:job_id>/cancel/", jobs.job_cancel_view, name="job-cancel"),
    path("jobs/<uuid:job_id>/retry/", jobs.job_retry_view, name="job-retry"),
    path("prompts/", library.prompt_library, name="prompts"),
    path("spend/", spend.spend_page, name="spend"),
    path("spend.csv", spend.spend_csv, name="spend-csv"),
    path("team/", team.team_page, name="team"),
    path("team/invite/", team.invite, name="invite"),
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        team.invitation_revoke,
        name="invitation-revoke",
    ),
    path("team/members/<int:user_id>/role/", team.member_role, name="member-role"),
    path("team/members/<int:user_id>/remove/", team.member_remove, name="member-remove"),
    path("team/leave/", team.team_leave, name="team-leave"),
    path("tokens/", team.api_tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", team.api_token_revoke, name="token-revoke"),
]
