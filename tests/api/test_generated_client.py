"""A client generated from /api/schema/ by openapi-python-client, as a script author would make
it, creates a job, waits for it with `wait=`, and downloads the clip: over real HTTP, against
the live server and the provider simulator."""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from videos.models import GenerationJob
from videos.services import api_token_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
CONFIG = Path(__file__).parent / "data" / "openapi-client.yaml"


@pytest.fixture
def generated_client(platform, tmp_path, monkeypatch):
    schema = tmp_path / "schema.json"
    schema.write_bytes(requests.get(f"{platform.url}/api/schema/?format=json", timeout=30).content)
    generate = [
        str(Path(sys.executable).with_name("openapi-python-client")),
        "generate",
        "--path",
        str(schema),
        "--meta",
        "none",
        "--config",
        str(CONFIG),
        "--output-path",
        str(tmp_path / "reelforge_client"),
    ]
    done = subprocess.run(generate, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout, done.stdout  # every operation made it into the client
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("reelforge_client")
    for name in [m for m in sys.modules if m.startswith("reelforge_client")]:
        del sys.modules[name]


def test_a_generated_client_creates_waits_for_and_downloads_a_clip(
    generated_client, platform, project, alice
):
    from reelforge_client.api.jobs import jobs_create, jobs_retrieve, jobs_video
    from reelforge_client.models import JobCreateRequest, KindEnum

    _, key = api_token_create(user=alice, name="generated client")
    client = generated_client.AuthenticatedClient(base_url=platform.url, token=key, timeout=60)
    body = JobCreateRequest(
        project=project.pk, kind=KindEnum.TEXT_TO_VIDEO, prompt="A lighthouse in fog", sound=True
    )
    created = jobs_create.sync(client=client, body=body)
    assert created.state in ("queued", "submitting", "submitted", "retrieving", "succeeded")

    job = jobs_retrieve.sync(job_id=created.id, client=client, wait=30)
    assert job.state == "succeeded", job
    clip = jobs_video.sync_detailed(job_id=created.id, client=client)
    assert clip.status_code == 200
    data = clip.parsed.payload.read()
    assert hashlib.sha256(data).hexdigest() == job.asset.sha256
    assert GenerationJob.objects.get(pk=created.id).asset.sha256 == job.asset.sha256
