"""Downloading a job's clip and poster: streamed with Range support from local disk, a signed
redirect on S3, and only for users who can see the job."""

from __future__ import annotations

import pytest
import requests
from django.http import StreamingHttpResponse

from tests.api.conftest import CLIP_BYTES, make_succeeded_job
from tests.fixtures.data import make_job
from videos.api.files import Unsatisfiable, byte_range
from videos.models import GenerationJob

pytestmark = pytest.mark.django_db


def video_url(job: GenerationJob) -> str:
    return f"/api/v1/jobs/{job.pk}/video/"


def body(response: StreamingHttpResponse) -> bytes:
    return response.getvalue()


def test_the_whole_clip_streams_with_its_checksum_as_etag(vic_api, project):
    job = make_succeeded_job(project)

    response = vic_api.get(video_url(job))  # viewers may download

    assert response.status_code == 200
    assert body(response) == CLIP_BYTES
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(len(CLIP_BYTES))
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"{job.asset.sha256}"'


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, len(CLIP_BYTES) - 1),
        ("bytes=-10", len(CLIP_BYTES) - 10, len(CLIP_BYTES) - 1),
        ("bytes=10000-999999", 10000, len(CLIP_BYTES) - 1),
    ],
)
def test_a_range_is_a_206_with_content_range(alice_api, project, header, first, last):
    job = make_succeeded_job(project)

    response = alice_api.get(video_url(job), HTTP_RANGE=header)

    assert response.status_code == 206
    assert body(response) == CLIP_BYTES[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(CLIP_BYTES)}"
    assert response["Content-Length"] == str(last - first + 1)


def test_a_range_past_the_end_is_a_416(alice_api, project):
    job = make_succeeded_job(project)
    response = alice_api.get(video_url(job), HTTP_RANGE=f"bytes={len(CLIP_BYTES)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(CLIP_BYTES)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "items=0-5", "bytes=9-2", "nonsense"])
def test_ranges_this_server_does_not_serve_get_the_whole_file(alice_api, project, header):
    job = make_succeeded_job(project)
    response = alice_api.get(video_url(job), HTTP_RANGE=header)
    assert response.status_code == 200
    assert body(response) == CLIP_BYTES


def test_if_range_with_another_version_gets_the_whole_file(alice_api, project):
    job = make_succeeded_job(project)
    stale = alice_api.get(video_url(job), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"other"')
    fresh = alice_api.get(
        video_url(job), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=f'"{job.asset.sha256}"'
    )
    assert (stale.status_code, fresh.status_code) == (200, 206)


def test_byte_range_edge_cases():
    assert byte_range(None, 10) is None
    assert byte_range("bytes=-", 10) is None
    assert byte_range("bytes=-20", 10) == (0, 9)
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=-0", 10)
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=0-", 0)


def test_the_poster_is_a_jpeg(alice_api, project):
    job = make_succeeded_job(project)
    response = alice_api.get(f"/api/v1/jobs/{job.pk}/poster/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert body(response).startswith(b"\xff\xd8\xff")


def test_a_job_without_a_clip_has_no_video(alice_api, project):
    job = make_job(project)
    for suffix in ("video/", "poster/"):
        response = alice_api.get(f"/api/v1/jobs/{job.pk}/{suffix}", HTTP_ACCEPT="video/mp4")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"


def test_on_s3_the_video_is_a_redirect_to_a_signed_url(alice_api, project, settings, s3_server):
    bucket = s3_server.new_bucket()
    s3_server.use_for_storage(settings, bucket)
    job = make_succeeded_job(project)

    response = alice_api.get(video_url(job))

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(s3_server.endpoint_url) and "Signature" in location
    assert requests.get(location, timeout=10).content == CLIP_BYTES


def test_a_copy_the_client_has_is_not_sent_again(alice_api, project):
    job = make_succeeded_job(project)
    first = alice_api.get(f"/api/v1/jobs/{job.pk}/video/")
    etag = first["ETag"]
    again = alice_api.get(f"/api/v1/jobs/{job.pk}/video/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag
    changed = alice_api.get(f"/api/v1/jobs/{job.pk}/video/", HTTP_IF_NONE_MATCH='"other"')
    assert changed.status_code == 200


def test_a_clip_link_works_without_a_token_until_it_expires(alice_api, project, settings):
    from rest_framework.test import APIClient

    job = make_succeeded_job(project)
    link = alice_api.get(f"/api/v1/jobs/{job.pk}/video-url/").json()
    assert link["expires_at"]
    anonymous = APIClient()
    clip = anonymous.get(link["url"])
    assert clip.status_code == 200 and b"".join(clip.streaming_content) == CLIP_BYTES
    ranged = anonymous.get(link["url"], HTTP_RANGE="bytes=0-9")
    assert ranged.status_code == 206
    assert anonymous.get(link["url"].replace("/clips/", "/clips/x")).status_code == 404
    settings.CLIP_LINK_SECONDS = -1  # as if an hour had passed
    assert anonymous.get(link["url"]).status_code == 404


def test_no_clip_link_for_a_job_without_a_clip_or_of_another_team(alice_api, bob_api, project):
    from tests.fixtures.data import make_job

    assert alice_api.get(f"/api/v1/jobs/{make_job(project).pk}/video-url/").status_code == 404
    job = make_succeeded_job(project)
    assert bob_api.get(f"/api/v1/jobs/{job.pk}/video-url/").status_code == 404


def test_on_object_storage_a_clip_link_is_the_storages_signed_url(
    alice_api, project, settings, s3_server
):
    s3_server.use_for_storage(settings, s3_server.new_bucket())
    job = make_succeeded_job(project)
    link = alice_api.get(f"/api/v1/jobs/{job.pk}/video-url/").json()
    assert "Signature=" in link["url"] or "X-Amz-Signature=" in link["url"]
    fetched = requests.get(link["url"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == CLIP_BYTES
