"""Batches through the API: preview, create (all or none), follow, act on, export."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing.models import Budget
from tests.api.conftest import CLIP_BYTES, errors, make_succeeded_job
from videos import services
from videos.models import Batch, GenerationJob, JobState

pytestmark = pytest.mark.django_db

BATCHES = "/api/v1/batches/"


@pytest.fixture
def template(project, alice):
    prompt = services.prompt_create(
        project=project, title="Cities", text="A {product} in {city}", by=alice
    )
    return prompt.current_version


def body(template, **fields):
    return {
        "prompt_version": template.pk,
        "duration": 5,
        "rows": [{"product": "teapot", "city": "Lyon"}, {"product": "kettle", "city": "Oslo"}],
        **fields,
    }


def test_a_preview_prices_each_row_and_saves_nothing(erin_api, template):
    response = erin_api.post(f"{BATCHES}preview/", body(template), format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["variables"] == ["product", "city"]
    assert [row["prompt"] for row in data["rows"]] == ["A teapot in Lyon", "A kettle in Oslo"]
    assert data["estimated_cost_usd"] == "0.5600"
    assert data["can_queue"] is True and data["row_errors"] == []
    assert data["budget_left_usd"] == "10.0000"
    assert not GenerationJob.objects.exists()


def test_a_preview_lists_every_rows_errors(erin_api, template):
    rows = [{"product": "teapot"}, {"product": "cup", "city": "Rome", "sound": "loud"}]
    data = erin_api.post(f"{BATCHES}preview/", body(template, rows=rows), format="json").json()
    assert data["can_queue"] is False
    assert data["row_errors"] == [
        {"row": 1, "column": "city", "message": "No value for {city}."},
        {"row": 2, "column": "sound", "message": "Give sound as yes or no."},
    ]


def test_a_batch_is_created_from_a_csv_file(erin_api, template):
    csv_file = SimpleUploadedFile(
        "rows.csv", b"product,city,duration\nteapot,Lyon,10\nkettle,Oslo,\n", "text/csv"
    )
    response = erin_api.post(
        BATCHES,
        {"prompt_version": template.pk, "sound": "true", "file": csv_file},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["rows"] == [
        {"product": "teapot", "city": "Lyon", "duration": "10"},
        {"product": "kettle", "city": "Oslo", "duration": ""},
    ]
    assert [(job["row"], job["prompt"], job["state"]) for job in data["jobs"]] == [
        (1, "A teapot in Lyon", "queued"),
        (2, "A kettle in Oslo", "queued"),
    ]
    assert [job.duration for job in GenerationJob.objects.order_by("batch_row")] == [10, 5]
    assert data["progress"] == {
        "rows": 2,
        "done": 0,
        "by_state": {"queued": 2},
        "spent_usd": "0.0000",
        "finished": False,
    }


def test_an_invalid_row_fails_the_whole_batch_with_its_row_and_column(erin_api, template):
    rows = [{"product": "teapot", "city": "Lyon"}, {"product": "kettle", "colour": "red"}]
    response = erin_api.post(BATCHES, body(template, rows=rows), format="json")
    assert response.status_code == 400
    assert errors(response) == {
        "rows.2.city": ["No value for {city}."],
        "rows.2.colour": ["The prompt has no variable {colour}."],
    }
    assert not GenerationJob.objects.exists() and not Batch.objects.exists()


def test_a_batch_over_budget_is_a_402_and_queues_nothing(erin_api, template, project):
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.30"))
    response = erin_api.post(BATCHES, body(template), format="json")
    assert response.status_code == 402
    assert "cannot cover these 2 jobs ($0.56)" in response.json()["detail"]
    assert not GenerationJob.objects.exists()


def test_rows_or_a_file_are_required_and_not_both(erin_api, template):
    missing = erin_api.post(BATCHES, {"prompt_version": template.pk}, format="json")
    assert errors(missing) == {"rows": ["Give the rows, or a CSV as `file`."]}
    bad_csv = SimpleUploadedFile("rows.csv", b"a,a\n1,2\n", "text/csv")
    response = erin_api.post(
        BATCHES, {"prompt_version": template.pk, "file": bad_csv}, format="multipart"
    )
    assert errors(response) == {"file": ["Every column of the header needs its own name."]}


def test_viewers_and_other_teams_cannot_create(vic_api, bob_api, template):
    assert vic_api.post(BATCHES, body(template), format="json").status_code == 403
    response = bob_api.post(BATCHES, body(template), format="json")
    assert errors(response) == {"prompt_version": ["No prompt version with this id in your teams."]}
    assert not GenerationJob.objects.exists()


def test_a_batch_is_followed_acted_on_and_exported(erin_api, bob_api, template):
    created = erin_api.post(BATCHES, body(template), format="json").json()
    url = f"{BATCHES}{created['id']}/"
    assert bob_api.get(url).status_code == 404
    for action in ("results/", "clips/"):  # another team's exports are not found either
        assert bob_api.get(f"{url}{action}").status_code == 404
    for action in ("cancel-remaining/", "retry-failed/"):
        assert bob_api.post(f"{url}{action}").status_code == 404
    assert erin_api.get(BATCHES).json()["results"][0]["id"] == created["id"]

    batch = Batch.objects.get()
    first, second = batch.jobs.order_by("batch_row")
    # Row 1 finished with a clip; row 2 failed.
    GenerationJob.objects.filter(pk=second.pk).update(state=JobState.FAILED)
    done = make_succeeded_job(template.prompt.project, prompt_text="A teapot in Lyon")
    GenerationJob.objects.filter(pk=first.pk).update(state=JobState.FAILED)
    GenerationJob.objects.filter(pk=done.pk).update(batch=batch, batch_row=1, retry_of=first)

    data = erin_api.get(url).json()
    assert data["progress"]["done"] == 2 and data["progress"]["finished"] is True
    assert data["progress"]["spent_usd"] == "0.2800"

    retried = erin_api.post(f"{url}retry-failed/").json()
    assert retried["changed"] == 1 and retried["detail"] == ""
    assert [job["state"] for job in retried["batch"]["jobs"]] == ["succeeded", "queued"]
    canceled = erin_api.post(f"{url}cancel-remaining/").json()
    assert canceled["changed"] == 1
    assert [job["state"] for job in canceled["batch"]["jobs"]] == ["succeeded", "canceled"]

    response = erin_api.get(f"{url}results/")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0] == ["row", "product", "city", "job_id", "state", "cost_usd", "clip_url"]
    assert lines[1][:6] == ["1", "teapot", "Lyon", str(done.pk), "succeeded", "0.28"]
    assert lines[1][6].startswith("http://testserver/clips/")
    assert lines[2][4:] == ["canceled", "", ""]

    archive = zipfile.ZipFile(io.BytesIO(b"".join(erin_api.get(f"{url}clips/").streaming_content)))
    assert archive.namelist() == [f"batch-{batch.pk}/row-0001.mp4"]
    assert archive.read(f"batch-{batch.pk}/row-0001.mp4") == CLIP_BYTES


def test_prompts_list_their_variables(erin_api, template):
    prompt = erin_api.get(f"/api/v1/prompts/{template.prompt_id}/").json()
    assert prompt["variables"] == ["product", "city"]


def test_a_batchs_shared_negative_prompt_and_mode_reach_its_jobs_on_the_kling_api(
    erin_api, template
):
    shared = {"negative_prompt": "no people", "mode": "pro"}
    refused = erin_api.post(BATCHES, body(template, **shared), format="json")
    assert refused.status_code == 400  # kie.ai takes neither
    assert set(errors(refused)) == {
        f"rows.{row}.{column}" for row in (1, 2) for column in ("negative_prompt", "mode")
    }

    services.project_update(project=template.prompt.project, provider="kling")
    response = erin_api.post(BATCHES, body(template, **shared), format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["negative_prompt"], response.json()["mode"]) == ("no people", "pro")
    jobs = GenerationJob.objects.filter(batch_id=response.json()["id"])
    assert {(job.negative_prompt, job.mode) for job in jobs} == {("no people", "pro")}
    assert "mode" in errors(erin_api.post(BATCHES, body(template, mode="max"), format="json"))
