"""A job's clip, poster and source image through the membership-checked file views: Range on
local disk, a signed redirect on S3, a 404 for strangers and anonymous visitors alike."""

from __future__ import annotations

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from tests.api.conftest import CLIP_BYTES, make_succeeded_job
from tests.fixtures.data import make_job, make_member
from videos.models import Kind, Role

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_member_gets_the_clip_with_range_support(project):
    viewer = make_member("vic", project.team, Role.VIEWER)
    job = make_succeeded_job(project)
    client = signed_in(viewer)

    whole = client.get(reverse("job-clip", args=[job.pk]))
    part = client.get(reverse("job-clip", args=[job.pk]), HTTP_RANGE="bytes=10-19")

    assert whole.status_code == 200 and whole.getvalue() == CLIP_BYTES
    assert whole["Content-Type"] == "video/mp4"
    assert "private" in whole["Cache-Control"]
    assert part.status_code == 206 and part.getvalue() == CLIP_BYTES[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(CLIP_BYTES)}"


def test_a_member_gets_the_poster_and_the_source_image(project):
    alice = make_member("alice", project.team, Role.OWNER)
    job = make_succeeded_job(project)
    job.source_image.save("still.png", ContentFile(PNG))
    client = signed_in(alice)

    poster = client.get(reverse("job-poster", args=[job.pk]))
    image = client.get(reverse("job-source-image", args=[job.pk]))

    assert poster.status_code == 200 and poster["Content-Type"] == "image/jpeg"
    assert image.status_code == 200 and image.getvalue() == PNG
    assert image["Content-Type"] == "image/png"


@pytest.mark.parametrize("name", ["job-clip", "job-poster", "job-source-image"])
def test_strangers_and_anonymous_visitors_get_a_404(project, other_team, name):
    job = make_succeeded_job(project)
    job.source_image.save("still.png", ContentFile(PNG))
    stranger = make_member("bob", other_team, Role.OWNER)
    url = reverse(name, args=[job.pk])

    assert signed_in(stranger).get(url).status_code == 404
    assert Client().get(url).status_code == 404


def test_an_inactive_member_gets_a_404(project):
    alice = make_member("alice", project.team, Role.OWNER)
    job = make_succeeded_job(project)
    client = signed_in(alice)
    alice.is_active = False
    alice.save()
    assert client.get(reverse("job-clip", args=[job.pk])).status_code == 404


def test_a_superuser_sees_every_team_as_in_the_admin(project):
    root = get_user_model().objects.create_superuser("root", password="root-pw-1")
    job = make_succeeded_job(project)
    assert signed_in(root).get(reverse("job-clip", args=[job.pk])).status_code == 200


def test_missing_files_are_404s(project):
    alice = make_member("alice", project.team, Role.OWNER)
    unfinished = make_job(project)
    text_job = make_succeeded_job(project)
    client = signed_in(alice)
    assert client.get(reverse("job-clip", args=[unfinished.pk])).status_code == 404
    assert client.get(reverse("job-poster", args=[unfinished.pk])).status_code == 404
    assert client.get(reverse("job-source-image", args=[text_job.pk])).status_code == 404


def test_an_unexpected_file_type_is_served_as_plain_bytes(project):
    alice = make_member("alice", project.team, Role.OWNER)
    job = make_job(project, kind=Kind.IMAGE_TO_VIDEO, source_image_url="https://example.com/a")
    job.source_image.save("page.html", ContentFile(b"<script>alert(1)</script>"))
    response = signed_in(alice).get(reverse("job-source-image", args=[job.pk]))
    assert response["Content-Type"] == "application/octet-stream"


def test_on_s3_a_member_is_redirected_to_a_signed_url(project, settings, s3_server):
    s3_server.use_for_storage(settings, s3_server.new_bucket())
    alice = make_member("alice", project.team, Role.OWNER)
    job = make_succeeded_job(project)

    response = signed_in(alice).get(reverse("job-clip", args=[job.pk]))

    assert response.status_code == 302
    assert "Signature" in response["Location"]
    assert requests.get(response["Location"], timeout=10).content == CLIP_BYTES


def test_media_files_have_no_public_url(project):
    job = make_succeeded_job(project)
    assert Client().get(f"/media/{job.asset.file.name}").status_code == 404
