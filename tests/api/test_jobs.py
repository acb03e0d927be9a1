"""Creating, listing, reading, canceling and retrying jobs through the API."""

from __future__ import annotations

import base64
import datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from billing.models import Budget, LedgerEntry
from tests.api.conftest import PNG_BYTES, errors, make_succeeded_job
from tests.fixtures.data import make_job
from videos.models import GenerationJob, JobEvent, JobState, Kind, Prompt, PromptVersion

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/jobs/"


def png(name: str = "still.png", data: bytes = PNG_BYTES) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


# --- Create ----------------------------------------------------------------------------------


def test_an_editor_creates_a_job_that_is_queued_and_priced(erin_api, project, job_body):
    response = erin_api.post(JOBS, job_body)

    assert response.status_code == 201, response.json()
    body = response.json()
    job = GenerationJob.objects.get(pk=body["id"])
    assert body["state"] == "queued" == job.state
    assert body["estimated_cost_usd"] == "0.2800"
    assert body["cost_usd"] is None and body["asset"] is None and body["error"] is None
    assert body["created_by"] == "erin"
    assert [event["to_state"] for event in body["events"]] == ["queued"]
    assert "callback_token" not in response.content.decode()
    assert job.callback_token not in response.content.decode()


def test_omitted_choices_take_the_project_defaults(alice_api, project):
    project.default_duration, project.default_sound, project.default_aspect_ratio = 10, True, "9:16"
    project.save()

    response = alice_api.post(
        JOBS, {"project": project.pk, "kind": "text_to_video", "prompt": "Waves at night"}
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["duration"], body["sound"], body["aspect_ratio"]) == (10, True, "9:16")
    assert body["estimated_cost_usd"] == "1.1000"


def test_a_job_can_use_a_saved_prompt_version(alice_api, alice, project):
    prompt = Prompt.objects.create(project=project, title="Fox")
    version = PromptVersion.objects.create(prompt=prompt, number=1, text="A fox in the snow")

    response = alice_api.post(
        JOBS, {"project": project.pk, "kind": "text_to_video", "prompt_version": version.pk}
    )

    assert response.status_code == 201
    assert response.json()["prompt"] == "A fox in the snow"
    assert response.json()["prompt_version"] == version.pk


def test_image_to_video_accepts_an_uploaded_image(alice_api, project):
    response = alice_api.post(
        JOBS,
        {
            "project": project.pk,
            "kind": "image_to_video",
            "prompt": "It starts to rain",
            "image": png(),
        },
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["image_uploaded"] is True
    assert response.json()["image_url"] == ""
    job = GenerationJob.objects.get(pk=response.json()["id"])
    assert job.source_image.read() == PNG_BYTES


def test_a_multipart_job_without_sound_field_takes_the_project_default(alice_api, project):
    project.default_sound = True
    project.save()

    response = alice_api.post(
        JOBS,
        {"project": project.pk, "kind": "image_to_video", "prompt": "Rain", "image": png()},
        format="multipart",
    )

    assert response.json()["sound"] is True


def test_image_to_video_accepts_a_public_image_url(alice_api, project, public_resolver):
    response = alice_api.post(
        JOBS,
        {
            "project": project.pk,
            "kind": "image_to_video",
            "prompt": "It starts to rain",
            "image_url": "https://images.example.com/still.png",
        },
    )

    assert response.status_code == 201, response.json()
    assert response.json()["image_url"] == "https://images.example.com/still.png"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prompt": "x" * 1001}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"kind": "music_video"}, "kind"),
        ({"duration": 7}, "duration"),
        ({"duration": True}, "duration"),
        ({"aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"sound": "loud"}, "sound"),
        ({"project": 999_999}, "project"),
        ({"project": 10**30}, "project"),
        ({"project": "abc"}, "project"),
        ({"prompt_version": 999_999}, "prompt_version"),
        ({"image_url": "https://images.example.com/a.png"}, "image"),
    ],
)
def test_invalid_input_is_refused_field_by_field(
    alice_api, job_body, public_resolver, change, field
):
    response = alice_api.post(JOBS, {**job_body, **change})

    assert response.status_code == 400
    assert field in errors(response), response.json()
    assert not GenerationJob.objects.exists()


def test_a_missing_prompt_is_refused(alice_api, job_body):
    del job_body["prompt"]
    response = alice_api.post(JOBS, job_body)
    assert response.status_code == 400
    assert "prompt" in errors(response)


def test_a_prompt_and_a_prompt_version_together_are_refused(alice_api, project, job_body):
    prompt = Prompt.objects.create(project=project, title="Fox")
    version = PromptVersion.objects.create(prompt=prompt, number=1, text="A fox")
    response = alice_api.post(JOBS, {**job_body, "prompt_version": version.pk})
    assert response.status_code == 400
    assert "prompt" in errors(response)


def test_a_prompt_version_of_another_project_is_refused(alice_api, team, project, job_body):
    from videos.models import Project

    sibling = Project.objects.create(team=team, name="Sibling")
    version = PromptVersion.objects.create(
        prompt=Prompt.objects.create(project=sibling, title="Fox"), number=1, text="A fox"
    )
    del job_body["prompt"]
    response = alice_api.post(JOBS, {**job_body, "prompt_version": version.pk})
    assert response.status_code == 400
    assert "prompt_version" in errors(response)


def test_another_teams_project_or_prompt_is_refused_as_if_missing(
    alice_api, bob, other_project, job_body
):
    version = PromptVersion.objects.create(
        prompt=Prompt.objects.create(project=other_project, title="Secret"), number=1, text="B"
    )
    missing = alice_api.post(JOBS, {**job_body, "project": 999_999}).json()
    foreign = alice_api.post(JOBS, {**job_body, "project": other_project.pk}).json()
    assert foreign == missing
    assert foreign["fields"] == {
        "project": [{"code": "not_found", "message": "No project with this id in your teams."}]
    }

    del job_body["prompt"]
    response = alice_api.post(JOBS, {**job_body, "prompt_version": version.pk})
    assert errors(response) == {"prompt_version": ["No prompt version with this id in your teams."]}
    assert not GenerationJob.objects.exists()


def test_image_to_video_needs_an_image(alice_api, project):
    response = alice_api.post(
        JOBS, {"project": project.pk, "kind": "image_to_video", "prompt": "Rain"}
    )
    assert response.status_code == 400
    assert "image" in errors(response)


def test_an_upload_that_is_not_an_image_is_refused(alice_api, project):
    response = alice_api.post(
        JOBS,
        {
            "project": project.pk,
            "kind": "image_to_video",
            "prompt": "Rain",
            "image": png("still.png", b"%PDF-1.7 not an image"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert errors(response)["image"] == ["Image must be a JPEG, PNG or WebP file."]


def test_an_image_over_10_mb_is_refused(alice_api, project):
    big = PNG_BYTES + b"\0" * (10 * 1024 * 1024)
    response = alice_api.post(
        JOBS,
        {
            "project": project.pk,
            "kind": "image_to_video",
            "prompt": "Rain",
            "image": png("big.png", big),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "10 MB" in errors(response)["image"][0]


def test_an_image_and_an_image_url_together_are_refused(alice_api, project, public_resolver):
    response = alice_api.post(
        JOBS,
        {
            "project": project.pk,
            "kind": "image_to_video",
            "prompt": "Rain",
            "image": png(),
            "image_url": "https://images.example.com/a.png",
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "image" in errors(response)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://images.example.com/a.png",
        "file:///etc/passwd",
        "http://127.0.0.1:8765/a.png",
        "http://localhost/a.png",
        "http://10.1.2.3/a.png",
        "http://192.168.0.10/a.png",
        "http://172.16.5.4/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://[fe80::1]/a.png",
        "http://0.0.0.0/a.png",
        "http://100.64.0.1/a.png",
        "http://240.0.0.1/a.png",
        "http://intranet.example.com/a.png",
        "http://nowhere.invalid/a.png",
        "http://user:secret@images.example.com/a.png",
        "http://images.example.com:99999/a.png",
    ],
)
def test_image_urls_that_are_not_public_are_refused(alice_api, project, public_resolver, url):
    response = alice_api.post(
        JOBS, {"project": project.pk, "kind": "image_to_video", "prompt": "Rain", "image_url": url}
    )
    assert response.status_code == 400, url
    assert "image_url" in errors(response)
    assert not GenerationJob.objects.exists()


def test_the_real_resolver_refuses_loopback_names():
    from videos.image_urls import image_url_problem

    assert "public address" in image_url_problem("http://localhost:8000/a.png")
    assert "public address" in image_url_problem("http://127.0.0.1/a.png")


def test_a_job_the_budget_cannot_cover_is_refused_with_402(alice_api, project, job_body):
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.50"))
    assert alice_api.post(JOBS, job_body).status_code == 201

    response = alice_api.post(JOBS, job_body)

    assert response.status_code == 402
    assert response.json()["code"] == "budget_exceeded"
    assert "monthly budget cannot cover" in response.json()["detail"]
    assert GenerationJob.objects.count() == 1


def test_viewers_cannot_create_jobs(vic_api, project, job_body):
    response = vic_api.post(JOBS, job_body)
    assert response.status_code == 403
    assert "viewer" in response.json()["detail"]
    assert not GenerationJob.objects.exists()


def test_a_form_body_that_is_not_json_or_multipart_is_unsupported(alice_api, job_body):
    response = alice_api.post(JOBS, "project=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_malformed_json_is_a_400(alice_api):
    response = alice_api.post(JOBS, '{"project": ', content_type="application/json")
    assert response.status_code == 400


# --- Idempotency -----------------------------------------------------------------------------


def test_the_same_key_and_body_return_the_first_job(alice_api, job_body):
    first = alice_api.post(JOBS, job_body, HTTP_IDEMPOTENCY_KEY="order-17")
    again = alice_api.post(JOBS, dict(reversed(job_body.items())), HTTP_IDEMPOTENCY_KEY="order-17")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["idempotency_key"] == "order-17"
    assert GenerationJob.objects.count() == 1


def test_spelling_out_a_default_is_the_same_body(alice_api, project, job_body):
    first = alice_api.post(JOBS, job_body, HTTP_IDEMPOTENCY_KEY="k1")
    del job_body["duration"], job_body["sound"], job_body["aspect_ratio"]
    again = alice_api.post(JOBS, job_body, HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_the_same_key_with_another_body_is_a_conflict(alice_api, job_body):
    alice_api.post(JOBS, job_body, HTTP_IDEMPOTENCY_KEY="order-17")

    response = alice_api.post(JOBS, {**job_body, "duration": 10}, HTTP_IDEMPOTENCY_KEY="order-17")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert GenerationJob.objects.count() == 1


def test_keys_belong_to_a_team(alice_api, bob_api, other_project, job_body):
    mine = alice_api.post(JOBS, job_body, HTTP_IDEMPOTENCY_KEY="order-17")
    theirs = bob_api.post(
        JOBS, {**job_body, "project": other_project.pk}, HTTP_IDEMPOTENCY_KEY="order-17"
    )
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


def test_an_uploaded_image_is_compared_by_its_bytes(alice_api, project):
    body = {"project": project.pk, "kind": "image_to_video", "prompt": "Rain"}
    first = alice_api.post(
        JOBS, {**body, "image": png()}, format="multipart", HTTP_IDEMPOTENCY_KEY="i"
    )
    same = alice_api.post(
        JOBS, {**body, "image": png("renamed.png")}, format="multipart", HTTP_IDEMPOTENCY_KEY="i"
    )
    other = alice_api.post(
        JOBS,
        {**body, "image": png("x.png", PNG_BYTES + b"\0")},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="i",
    )

    assert (first.status_code, same.status_code, other.status_code) == (201, 200, 409)
    assert same.json()["id"] == first.json()["id"]


def test_a_replay_needs_no_budget_left(alice_api, project, job_body):
    first = alice_api.post(JOBS, job_body, HTTP_IDEMPOTENCY_KEY="k")
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0"))
    again = alice_api.post(JOBS, job_body, HTTP_IDEMPOTENCY_KEY="k")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("key", ["x" * 151, "has space", "slash/key", "ünïcode"])
def test_a_malformed_idempotency_key_is_refused(alice_api, job_body, key):
    response = alice_api.post(JOBS, job_body, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in errors(response)


# --- Batch -----------------------------------------------------------------------------------


def test_a_batch_creates_every_job(alice_api, job_body):
    response = alice_api.post(
        f"{JOBS}batch/",
        {"jobs": [job_body, {**job_body, "duration": 10}, {**job_body, "sound": True}]},
    )

    assert response.status_code == 201, response.json()
    jobs = response.json()["jobs"]
    assert [job["estimated_cost_usd"] for job in jobs] == ["0.2800", "0.5500", "0.5500"]
    assert GenerationJob.objects.count() == 3


def test_one_invalid_job_saves_none_and_names_each_error(alice_api, job_body):
    response = alice_api.post(
        f"{JOBS}batch/",
        {
            "jobs": [
                job_body,
                {**job_body, "prompt": "x" * 1001},
                job_body,
                {**job_body, "duration": 7},
            ]
        },
    )

    assert response.status_code == 400
    assert set(errors(response)) == {"jobs.1.prompt", "jobs.3.duration"}
    assert not GenerationJob.objects.exists()


def test_a_batch_is_priced_as_a_whole_against_the_budget(alice_api, project, job_body):
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("1.00"))

    response = alice_api.post(f"{JOBS}batch/", {"jobs": [job_body] * 4})  # 4 x $0.28 > $1

    assert response.status_code == 402
    assert response.json()["detail"].startswith("Job 3:")
    assert not GenerationJob.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_batch_saves_nothing_when_a_save_fails_midway(alice_api, job_body, monkeypatch):
    from videos.models import JobEvent

    def failing_save(events, **kwargs):  # the jobs are saved; their first events are not
        raise RuntimeError("disk full")

    monkeypatch.setattr(JobEvent.objects, "bulk_create", failing_save)
    with pytest.raises(RuntimeError):
        alice_api.post(f"{JOBS}batch/", {"jobs": [job_body] * 4})
    assert not GenerationJob.objects.exists()
    assert not JobEvent.objects.exists()


@pytest.mark.parametrize("count", [0, 101])
def test_a_batch_has_1_to_100_jobs(alice_api, job_body, count):
    response = alice_api.post(f"{JOBS}batch/", {"jobs": [job_body] * count})
    assert response.status_code == 400
    assert "jobs" in errors(response)


def test_a_batch_of_100_is_accepted(alice_api, project, job_body):
    Budget.objects.filter(project=project).delete()
    response = alice_api.post(f"{JOBS}batch/", {"jobs": [job_body] * 100})
    assert response.status_code == 201
    assert GenerationJob.objects.count() == 100


def test_a_batch_needs_an_editor_in_every_team_it_reaches(
    alice_api, team, bob, other_project, job_body
):
    from tests.fixtures.data import make_member
    from videos.models import Membership, Role

    Membership.objects.create(user=bob, team=team, role=Role.VIEWER)
    response = alice_api.post(
        f"{JOBS}batch/", {"jobs": [job_body, {**job_body, "project": other_project.pk}]}
    )
    assert response.status_code == 400  # alice is not in Beta: the project is not found
    from tests.api.conftest import client_for

    carol = make_member("carol", team, Role.EDITOR)
    Membership.objects.create(user=carol, team=other_project.team, role=Role.VIEWER)
    response = client_for(carol).post(
        f"{JOBS}batch/", {"jobs": [job_body, {**job_body, "project": other_project.pk}]}
    )
    assert response.status_code == 403
    assert not GenerationJob.objects.exists()


def test_a_repeated_batch_returns_its_jobs(alice_api, job_body):
    body = {"jobs": [job_body, {**job_body, "duration": 10}]}
    first = alice_api.post(f"{JOBS}batch/", body, HTTP_IDEMPOTENCY_KEY="batch-1")
    again = alice_api.post(f"{JOBS}batch/", body, HTTP_IDEMPOTENCY_KEY="batch-1")
    other = alice_api.post(f"{JOBS}batch/", {"jobs": [job_body]}, HTTP_IDEMPOTENCY_KEY="batch-1")

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
    assert GenerationJob.objects.count() == 2


# --- List and detail -------------------------------------------------------------------------


def test_the_list_holds_only_the_users_teams_jobs_newest_first(alice_api, project, other_project):
    older = make_job(project)
    newer = make_job(project)
    make_job(other_project)

    results = alice_api.get(JOBS).json()["results"]

    assert [job["id"] for job in results] == [str(newer.pk), str(older.pk)]
    assert "events" not in results[0]


def test_the_list_pages_with_a_cursor(alice_api, project):
    jobs = [make_job(project) for _ in range(5)]

    seen = []
    url = f"{JOBS}?page_size=2"
    while url:
        page = alice_api.get(url).json()
        assert len(page["results"]) <= 2
        seen += [job["id"] for job in page["results"]]
        url = page["next"]

    assert seen == [str(job.pk) for job in reversed(jobs)]


def test_a_made_up_cursor_is_not_found(alice_api, project):
    cursor = base64.b64encode(b"o=many").decode()
    assert alice_api.get(f"{JOBS}?cursor={cursor}").status_code == 404


def test_the_list_filters_by_project_state_kind_and_time(alice_api, team, project):
    from videos.models import Project

    second = Project.objects.create(team=team, name="Second")
    queued = make_job(project)
    failed = make_job(project, state=JobState.FAILED)
    image = make_job(second, kind=Kind.IMAGE_TO_VIDEO, source_image_url="https://x.example/a.png")
    GenerationJob.objects.filter(pk=queued.pk).update(
        created=timezone.now() - datetime.timedelta(days=3)
    )

    def ids(query: str) -> set[str]:
        response = alice_api.get(f"{JOBS}?{query}")
        assert response.status_code == 200, response.json()
        return {job["id"] for job in response.json()["results"]}

    assert ids(f"project={second.pk}") == {str(image.pk)}
    assert ids("state=failed") == {str(failed.pk)}
    assert ids("state=failed&state=queued") == {str(failed.pk), str(queued.pk), str(image.pk)}
    assert ids("kind=image_to_video") == {str(image.pk)}
    day_ago = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert ids(f"created_before={day_ago}".replace("+", "%2B")) == {str(queued.pk)}
    assert ids(f"created_after={day_ago}".replace("+", "%2B")) == {str(failed.pk), str(image.pk)}


@pytest.mark.parametrize(
    "query", ["state=finished", "kind=gif", "created_after=yesterday", "project=abc"]
)
def test_bad_filters_are_a_400(alice_api, project, query):
    assert alice_api.get(f"{JOBS}?{query}").status_code == 400


def test_a_job_in_detail_has_events_cost_and_asset(alice_api, project):
    job = make_succeeded_job(project, charge="0.2750")
    JobEvent.objects.create(job=job, from_state="", to_state=JobState.QUEUED, reason="Created")

    body = alice_api.get(f"{JOBS}{job.pk}/").json()

    assert body["state"] == "succeeded"
    assert body["cost_usd"] == "0.2750"
    assert body["events"][0]["to_state"] == "queued"
    asset = body["asset"]
    assert asset["url"] == f"http://testserver/api/v1/jobs/{job.pk}/video/"
    assert asset["poster_url"] == f"http://testserver/api/v1/jobs/{job.pk}/poster/"
    assert (asset["width"], asset["height"], asset["duration_s"], asset["has_audio"]) == (
        1280,
        720,
        5.0,
        False,
    )
    assert asset["sha256"] == job.asset.sha256 and asset["size_bytes"] == job.asset.size_bytes


def test_a_failed_job_says_why(alice_api, project):
    job = make_job(
        project,
        state=JobState.FAILED,
        provider_error_code="501",
        provider_error_message="Content policy",
        state_reason="Generation failed: Content policy",
    )
    assert alice_api.get(f"{JOBS}{job.pk}/").json()["error"] == {
        "code": "501",
        "message": "Content policy",
    }


@pytest.mark.parametrize("suffix", ["", "cancel/", "retry/", "video/", "poster/"])
def test_another_teams_job_is_not_found(alice_api, other_project, suffix):
    job = make_succeeded_job(other_project)
    method = alice_api.post if suffix in ("cancel/", "retry/") else alice_api.get
    response = method(f"{JOBS}{job.pk}/{suffix}")
    assert response.status_code == 404
    assert str(job.pk) not in response.content.decode()


@pytest.mark.parametrize(
    "job_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1" * 300]
)
def test_unknown_job_ids_are_not_found(alice_api, job_id):
    response = alice_api.get(f"{JOBS}{job_id}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


# --- Cancel and retry ------------------------------------------------------------------------


def test_canceling_a_queued_job(erin_api, project):
    job = make_job(project)
    response = erin_api.post(f"{JOBS}{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["state"] == "canceled"
    assert response.json()["events"][-1]["reason"] == "Canceled by erin."


def test_canceling_a_finished_job_is_a_conflict(alice_api, project):
    job = make_succeeded_job(project)
    response = alice_api.post(f"{JOBS}{job.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "job_ended"


def test_viewers_cannot_cancel_or_retry(vic_api, project):
    queued = make_job(project)
    failed = make_job(project, state=JobState.FAILED)
    assert vic_api.post(f"{JOBS}{queued.pk}/cancel/").status_code == 403
    assert vic_api.post(f"{JOBS}{failed.pk}/retry/").status_code == 403
    queued.refresh_from_db()
    assert queued.state == JobState.QUEUED


def test_retrying_a_failed_job_makes_a_new_attempt(alice_api, project):
    failed = make_job(project, state=JobState.FAILED, estimated_cost_usd=Decimal("0.28"))

    response = alice_api.post(f"{JOBS}{failed.pk}/retry/")

    assert response.status_code == 201
    body = response.json()
    assert body["retry_of"] == str(failed.pk) and body["attempt"] == 2
    assert body["state"] == "queued" and body["prompt"] == failed.prompt_text


def test_retrying_a_queued_job_is_a_conflict(alice_api, project):
    job = make_job(project)
    response = alice_api.post(f"{JOBS}{job.pk}/retry/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_retryable"


def test_a_retry_the_budget_cannot_cover_is_a_402(alice_api, project):
    failed = make_job(project, state=JobState.FAILED)
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.10"))
    assert alice_api.post(f"{JOBS}{failed.pk}/retry/").status_code == 402


# --- Naming a saved prompt, and what an image-to-video job reports --------------------------


@pytest.fixture
def two_prompts(project, alice):
    from videos import services

    first = services.prompt_create(project=project, title="A", text="Prompt A, first", by=alice)
    services.prompt_update(prompt=first, by=alice, text="Prompt A, second")
    second = services.prompt_create(project=project, title="B", text="Prompt B, first", by=alice)
    return first, second


def test_a_job_names_a_saved_prompt_and_its_version_number(erin_api, project, two_prompts):
    first, second = two_prompts
    body = {"project": project.pk, "kind": "text_to_video", "prompt_id": second.pk, "version": 1}
    created = erin_api.post(JOBS, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["prompt"] == "Prompt B, first"

    current = erin_api.post(JOBS, {**body, "prompt_id": first.pk, "version": None}, format="json")
    assert current.json()["prompt"] == "Prompt A, second"


def test_a_version_number_alone_or_one_a_prompt_lacks_is_refused(erin_api, project, two_prompts):
    _, second = two_prompts
    body = {"project": project.pk, "kind": "text_to_video"}
    alone = erin_api.post(JOBS, {**body, "version": 1}, format="json")
    assert alone.status_code == 400 and "version" in errors(alone)
    missing = erin_api.post(JOBS, {**body, "prompt_id": second.pk, "version": 9}, format="json")
    assert missing.status_code == 400 and "no version 9" in str(missing.json())
    assert not GenerationJob.objects.exists()


def test_prompts_show_their_current_version_id(erin_api, two_prompts):
    first, _ = two_prompts
    shown = erin_api.get(f"/api/v1/prompts/{first.pk}/").json()
    assert shown["version"] == 2
    assert shown["version_id"] == first.current_version.pk


def test_an_image_to_video_job_reports_no_aspect_ratio_and_refuses_one(
    erin_api, project, public_resolver
):
    body = {
        "project": project.pk,
        "kind": "image_to_video",
        "prompt": "The boat drifts",
        "image_url": "https://images.example.com/boat.png",
    }
    created = erin_api.post(JOBS, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["aspect_ratio"] is None
    refused = erin_api.post(JOBS, {**body, "aspect_ratio": "9:16"}, format="json")
    assert refused.status_code == 400
    assert "aspect ratio from the image" in str(errors(refused)["aspect_ratio"])


def test_a_clip_that_came_after_cancel_is_shown_and_found(alice_api, project):
    from tests.api.conftest import make_succeeded_job

    job = make_succeeded_job(project)
    GenerationJob.objects.filter(pk=job.pk).update(state=JobState.CANCELED)
    shown = alice_api.get(f"{JOBS}{job.pk}/").json()
    assert (shown["state"], shown["charged_after_cancel"]) == ("canceled", True)
    assert shown["asset"]["sha256"] and shown["cost_usd"] == "0.2800"
    with_clips = alice_api.get(f"{JOBS}?has_asset=true").json()["results"]
    assert [row["id"] for row in with_clips] == [str(job.pk)]
    assert alice_api.get(f"{JOBS}?has_asset=false").json()["results"] == []


def test_a_retried_job_links_forward_to_its_new_attempt(alice_api, project):
    failed = make_job(project, state=JobState.FAILED)
    retried = alice_api.post(f"{JOBS}{failed.pk}/retry/").json()
    assert alice_api.get(f"{JOBS}{failed.pk}/").json()["retried_as"] == retried["id"]
    assert retried["retry_of"] == str(failed.pk) and retried["retried_as"] is None


@pytest.mark.parametrize("size", ["0", "101", "-1", "ten"])
def test_a_page_size_outside_1_to_100_is_refused(alice_api, size):
    answer = alice_api.get(f"{JOBS}?page_size={size}")
    assert answer.status_code == 400 and "page_size" in errors(answer)


def test_a_job_that_needs_attention_is_not_canceled_through_the_api(erin_api, project):
    job = make_job(project, state=JobState.NEEDS_ATTENTION)
    answer = erin_api.post(f"{JOBS}{job.pk}/cancel/")
    assert (answer.status_code, answer.json()["code"]) == (409, "needs_attention")
