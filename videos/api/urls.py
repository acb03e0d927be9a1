from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from billing.urls import urlpatterns as billing_urls
from videos.api import auth, batches, estimate, jobs, projects, prompts, teams, webhooks
from videos.api.errors import unknown_route

app_name = "api"

# Ids are matched as any segment and checked by the views, so a malformed one is a JSON 404
# like any other missing object.
v1: list[URLPattern | URLResolver] = [
    path("auth/token/", auth.TokenApi.as_view(), name="token"),
    path("tokens/", auth.ApiTokenListApi.as_view(), name="tokens"),
    path("tokens/<str:token_id>/", auth.ApiTokenDetailApi.as_view(), name="api-token"),
    path("teams/", teams.TeamListApi.as_view(), name="teams"),
    path("teams/<str:team_id>/members/", teams.MemberListApi.as_view(), name="team-members"),
    path(
        "teams/<str:team_id>/members/<str:user_id>/",
        teams.MemberDetailApi.as_view(),
        name="team-member",
    ),
    path("teams/<str:team_id>/leave/", teams.TeamLeaveApi.as_view(), name="team-leave"),
    path(
        "teams/<str:team_id>/invitations/",
        teams.TeamInvitationListApi.as_view(),
        name="team-invitations",
    ),
    path(
        "teams/<str:team_id>/invitations/<str:invitation_id>/",
        teams.TeamInvitationDetailApi.as_view(),
        name="team-invitation",
    ),
    path("invitations/", teams.MyInvitationListApi.as_view(), name="invitations"),
    path(
        "invitations/<str:invitation_id>/accept/",
        teams.InvitationAcceptApi.as_view(),
        name="invitation-accept",
    ),
    path(
        "invitations/<str:invitation_id>/decline/",
        teams.InvitationDeclineApi.as_view(),
        name="invitation-decline",
    ),
    path("projects/", projects.ProjectListApi.as_view(), name="projects"),
    path("projects/<str:project_id>/", projects.ProjectDetailApi.as_view(), name="project"),
    path("prompts/", prompts.PromptListApi.as_view(), name="prompts"),
    path("prompts/<str:prompt_id>/", prompts.PromptDetailApi.as_view(), name="prompt"),
    path(
        "prompts/<str:prompt_id>/versions/",
        prompts.PromptVersionListApi.as_view(),
        name="prompt-versions",
    ),
    path("jobs/", jobs.JobListApi.as_view(), name="jobs"),
    path("jobs/batch/", jobs.JobBatchApi.as_view(), name="jobs-batch"),
    path("jobs/<str:job_id>/", jobs.JobDetailApi.as_view(), name="job"),
    path("jobs/<str:job_id>/cancel/", jobs.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/retry/", jobs.JobRetryApi.as_view(), name="job-retry"),
    path("jobs/<str:job_id>/video/", jobs.JobVideoApi.as_view(), name="job-video"),
    path("jobs/<str:job_id>/poster/", jobs.JobPosterApi.as_view(), name="job-poster"),
    path("jobs/<str:job_id>/video-url/", jobs.JobVideoUrlApi.as_view(), name="job-video-url"),
    path("batches/", batches.BatchListApi.as_view(), name="batches"),
    path("batches/preview/", batches.BatchPreviewApi.as_view(), name="batches-preview"),
    path("batches/<str:batch_id>/", batches.BatchDetailApi.as_view(), name="batch"),
    path(
        "batches/<str:batch_id>/cancel-remaining/",
        batches.BatchCancelRemainingApi.as_view(),
        name="batch-cancel-remaining",
    ),
    path(
        "batches/<str:batch_id>/retry-failed/",
        batches.BatchRetryFailedApi.as_view(),
        name="batch-retry-failed",
    ),
    path(
        "batches/<str:batch_id>/results/",
        batches.BatchResultsCsvApi.as_view(),
        name="batch-results-csv",
    ),
    path(
        "batches/<str:batch_id>/clips/",
        batches.BatchClipsZipApi.as_view(),
        name="batch-clips-zip",
    ),
    path("webhooks/", webhooks.WebhookListApi.as_view(), name="webhooks"),
    path("webhooks/<str:webhook_id>/", webhooks.WebhookDetailApi.as_view(), name="webhook"),
    path(
        "webhooks/<str:webhook_id>/rotate-secret/",
        webhooks.WebhookRotateApi.as_view(),
        name="webhook-rotate-secret",
    ),
    path("webhooks/<str:webhook_id>/test/", webhooks.WebhookTestApi.as_view(), name="webhook-test"),
    path(
        "webhooks/<str:webhook_id>/deliveries/",
        webhooks.WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/resend/",
        webhooks.WebhookResendApi.as_view(),
        name="webhook-resend",
    ),
    path("estimate/", estimate.EstimateApi.as_view(), name="estimate"),
    *billing_urls,  # billing's endpoints: spend/
]


def slash_optional(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    """Each route also without its trailing slash: a script that posts to `/jobs` must reach the
    view, not a redirect that its HTTP client follows as a GET. The schema lists one spelling."""
    aliases = [
        path(str(p.pattern).rstrip("/"), p.callback) for p in patterns if isinstance(p, URLPattern)
    ]
    return [*patterns, *aliases]


urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's set-up comes as a script file: the site's policy runs no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("v1/", include(slash_optional(v1))),
    # Anything else under /api/ is a JSON 404, never an HTML page.
    re_path(r"^.*$", unknown_route),
]
