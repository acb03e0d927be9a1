"""The editor's side: jobs are added through the pipeline's rules, and secrets stay hidden."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.urls import reverse
from PIL import Image

from billing.models import Budget
from tests.fixtures.data import make_job
from videos import jobs
from videos.models import GenerationJob, JobState, ProviderAccount

pytestmark = pytest.mark.django_db
ADD_URL = reverse("admin:videos_generationjob_add")


def form(project, **fields):
    data = {
        "project": project.pk,
        "kind": "text_to_video",
        "prompt": "Fireflies in a jar",
        "duration": "5",
        "aspect_ratio": "16:9",
    }
    data.update(fields)
    return data


def test_adding_a_job_goes_through_the_pipeline(admin_client, project):
    response = admin_client.post(ADD_URL, form(project, sound="on"))
    assert response.status_code == 302
    job = GenerationJob.objects.get()
    assert job.state == JobState.QUEUED
    assert job.estimated_cost_usd == Decimal("0.55")
    assert job.events.get().to_state == JobState.QUEUED


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"prompt": "x" * 1001}, "1 to 1000 characters"),
        ({"prompt": ""}, "1 to 1000 characters"),
        ({"kind": "image_to_video"}, "needs an image"),
        # The provider would fetch it from inside our network: refused.
        ({"kind": "image_to_video", "image_url": "http://127.0.0.1:8000/admin/"}, "public address"),
        (
            {"kind": "image_to_video", "image_url": "http://169.254.169.254/latest/"},
            "public address",
        ),
        ({"image_url": "https://example.com/a.png"}, "Text to video takes no image"),
    ],
)
def test_bad_input_is_refused_on_the_form(admin_client, project, fields, message):
    response = admin_client.post(ADD_URL, form(project, **fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_a_negative_prompt_and_a_mode_are_taken_where_the_provider_takes_them(
    admin_client, project
):
    response = admin_client.post(ADD_URL, form(project, negative_prompt="no logos", mode="pro"))
    page = response.content.decode()
    assert "kie.ai takes no negative prompt" in page and "kie.ai takes no mode" in page
    assert not GenerationJob.objects.exists()

    project.provider = "kling"
    project.save(update_fields=["provider"])
    response = admin_client.post(ADD_URL, form(project, negative_prompt="no logos", mode="pro"))
    assert response.status_code == 302
    job = GenerationJob.objects.get()
    assert (job.provider, job.negative_prompt, job.mode) == ("kling", "no logos", "pro")
    page = admin_client.get(reverse("admin:videos_generationjob_change", args=[job.pk]))
    assert "no logos" in page.content.decode()


def test_a_file_that_is_not_an_image_is_refused(admin_client, project):
    fake = io.BytesIO(b"GIF89a definitely not a png")
    fake.name = "photo.png"
    response = admin_client.post(ADD_URL, form(project, kind="image_to_video", image=fake))
    assert "JPEG, PNG or WebP" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_an_image_to_video_job_keeps_its_uploaded_image(admin_client, project):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "sunset.png"
    response = admin_client.post(
        ADD_URL, form(project, kind="image_to_video", image=buffer, aspect_ratio="")
    )
    assert response.status_code == 302
    job = GenerationJob.objects.get()
    assert job.source_image.read().startswith(b"\x89PNG")


def test_over_budget_is_refused_with_the_reason(admin_client, project):
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.10"))
    response = admin_client.post(ADD_URL, form(project))
    assert "monthly budget cannot cover" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_the_callback_token_never_shows(admin_client, project):
    job = make_job(project)
    page = admin_client.get(reverse("admin:videos_generationjob_change", args=[job.pk]))
    assert page.status_code == 200
    assert job.callback_token not in page.content.decode()


def test_cancel_action_asks_first_then_cancels(admin_client, project):
    job = make_job(project)
    action = {"action": "cancel_jobs", "_selected_action": [job.pk]}
    changelist = reverse("admin:videos_generationjob_changelist")

    confirm = admin_client.post(changelist, action)
    assert "Canceled; its reservation is released." in confirm.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.QUEUED

    admin_client.post(changelist, {**action, "post": "yes"})
    job.refresh_from_db()
    assert job.state == JobState.CANCELED


def test_a_pause_is_announced_and_can_be_resumed(admin_client, project):
    jobs.submissions_pause("kie", code="401", reason="The API key was refused.")
    page = admin_client.get(reverse("admin:videos_generationjob_changelist"))
    assert "Submissions to kie are paused: The API key was refused." in page.content.decode()

    account = ProviderAccount.objects.get(provider="kie")
    admin_client.post(
        reverse("admin:videos_provideraccount_changelist"),
        {"action": "resume_submissions", "_selected_action": [account.pk]},
    )
    account.refresh_from_db()
    assert not account.is_paused


def test_api_tokens_are_listed_and_revoked_without_showing_them(admin_client, alice):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=alice)
    pages = [
        admin_client.get(reverse("admin:authtoken_tokenproxy_changelist")),
        admin_client.get(reverse("admin:authtoken_tokenproxy_delete", args=[alice.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        assert "alice" in page.content.decode()
        assert token.key not in page.content.decode()


def test_a_prompt_and_a_prompt_version_together_are_refused_as_the_api_refuses_them(
    admin_client, project, alice
):
    from tests.api.conftest import client_for, errors
    from videos.services import prompt_create

    version = prompt_create(
        project=project, title="Fox", text="A fox in snow", by=alice
    ).versions.get()
    admin = admin_client.post(ADD_URL, form(project, prompt_version=version.pk))
    api = client_for(alice).post(
        "/api/v1/jobs/",
        {
            "project": project.pk,
            "kind": "text_to_video",
            "prompt": "Fireflies in a jar",
            "prompt_version": version.pk,
        },
        format="json",
    )
    message = "Give a prompt or a prompt version, not both."
    assert admin.status_code == 200 and message in admin.content.decode()
    assert api.status_code == 400 and errors(api)["prompt"] == [message]
    assert not GenerationJob.objects.exists()
