"""Hostile uploads through every upload field: the API's image-to-video job, the portal's clip
form, the portal batch's per-row images, the admin's add-job form and the batches' CSV files. Each is refused with a
clear message on its field, and nothing is kept: no job, no batch, no stored file, no ledger
entry."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from billing.models import LedgerEntry
from tests.api.conftest import client_for, errors
from tests.fixtures.data import make_member
from tests.fixtures.images import png_declaring
from videos import services
from videos.batches import CSV_MAX_BYTES
from videos.models import Batch, GenerationJob, Project, Role
from videos.providers.base import IMAGE_MAX_BYTES

pytestmark = [pytest.mark.faults, pytest.mark.django_db]


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


# (case, file name, bytes, words the message must contain)
HOSTILE_IMAGES = [
    ("html as png", "still.png", b"<!doctype html><script>alert(1)</script>", "JPEG, PNG or WebP"),
    (
        "svg as png",
        "still.png",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "JPEG, PNG or WebP",
    ),
    ("text as png", "still.png", b"just some text, not pixels", "JPEG, PNG or WebP"),
    ("png signature then html", "still.png", b"\x89PNG\r\n\x1a\n<html>", "cannot be read"),
    ("over 10 MB", "big.png", png() + b"\0" * IMAGE_MAX_BYTES, "10 MB"),
    ("decompression bomb", "bomb.png", png_declaring(20_000, 20_000), "megapixels"),
    ("just over the pixel limit", "wide.png", png_declaring(9_000, 9_000), "megapixels"),
    ("zero bytes", "empty.png", b"", "empty"),
]
IDS = [case for case, *_ in HOSTILE_IMAGES]


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


class Nothing:
    """What must not change while a hostile upload is refused."""

    def __init__(self, media_root: Path) -> None:
        self.media_root = media_root
        self.before = self.now()

    def now(self) -> tuple[int, int, int, list[Path]]:
        return (
            GenerationJob.objects.count(),
            Batch.objects.count(),
            LedgerEntry.objects.count(),
            stored_files(self.media_root),
        )

    def changed(self) -> bool:
        return self.now() != self.before


@pytest.fixture
def nothing_kept(media_root: Path) -> Iterator[Nothing]:
    watch = Nothing(media_root)
    yield watch
    assert not watch.changed(), f"something was kept: {watch.before} -> {watch.now()}"


@pytest.fixture
def fresh_throttles(settings: Any) -> None:
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"abuse-{uuid.uuid4().hex}"}
        for name, config in settings.CACHES.items()
    }


@pytest.fixture
def editor(project: Project, fresh_throttles: None):
    return make_member("erin", project.team, Role.EDITOR)


@pytest.fixture
def portal(editor) -> Client:
    client = Client()
    client.force_login(editor)
    return client


@pytest.fixture
def template(project: Project, editor):
    prompt = services.prompt_create(project=project, title="Things", text="A {thing}", by=editor)
    return prompt.versions.get()


def post_image_job(editor: Any, project: Any, name: str, data: bytes) -> Any:
    """An image-to-video job through the API, with `data` uploaded as `name`."""
    return client_for(editor).post(
        "/api/v1/jobs/",
        {
            "project": project.pk,
            "kind": "image_to_video",
            "prompt": "The picture comes alive",
            "duration": 5,
            "image": SimpleUploadedFile(name, data, content_type="image/png"),
        },
        format="multipart",
    )


@pytest.mark.parametrize(("case", "name", "data", "words"), HOSTILE_IMAGES, ids=IDS)
def test_the_api_refuses_a_hostile_image_on_its_field(
    editor, project, nothing_kept, case, name, data, words
):
    response = post_image_job(editor, project, name, data)
    assert response.status_code == 400, (case, response.content[:300])
    messages = errors(response)["image"]
    assert any(words in message for message in messages), (case, messages)


@pytest.mark.parametrize(("case", "name", "data", "words"), HOSTILE_IMAGES, ids=IDS)
def test_the_portal_clip_form_refuses_a_hostile_image_on_its_field(
    portal, project, nothing_kept, case, name, data, words
):
    response = portal.post(
        reverse("portal:clip-create", args=[project.pk]),
        {
            "kind": "image_to_video",
            "prompt": "The picture comes alive",
            "duration": "5",
            "request_id": f"form-{case}",
            "image": SimpleUploadedFile(name, data, content_type="image/png"),
        },
    )
    assert response.status_code == 400, case
    messages = response.context["form"].errors["image"]
    assert any(words in message for message in messages), (case, messages)


@pytest.mark.parametrize(("case", "name", "data", "words"), HOSTILE_IMAGES, ids=IDS)
def test_a_portal_batch_refuses_a_hostile_row_image(
    portal, project, template, nothing_kept, case, name, data, words
):
    response = portal.post(
        reverse("portal:batch-new", args=[project.pk]),
        {
            "prompt_version": template.pk,
            "rows_text": f"thing,image\nteapot,{name}\n",
            "duration": "5",
            "action": "queue",
            "images": [SimpleUploadedFile(name, data, content_type="image/png")],
        },
    )
    assert response.status_code in (200, 400), case  # the preview, with the errors
    html = response.content.decode()
    if response.context["form"].errors:  # Django's own: an empty file
        messages = response.context["form"].errors["images"]
    else:
        messages = [f"{e.column}: {e.message}" for e in response.context["plan"].errors]
    assert any(words in message for message in messages), (case, messages)
    assert "Queued" not in html


@pytest.mark.parametrize(("case", "name", "data", "words"), HOSTILE_IMAGES, ids=IDS)
def test_the_admins_add_job_form_refuses_a_hostile_image_on_its_field(
    project, fresh_throttles, nothing_kept, case, name, data, words
):
    staff = make_member("ed", project.team, Role.EDITOR)
    staff.is_staff = True
    staff.save()
    admin = Client()
    admin.force_login(staff)
    response = admin.post(
        reverse("admin:videos_generationjob_add"),
        {
            "project": project.pk,
            "kind": "image_to_video",
            "prompt": "The picture comes alive",
            "duration": "5",
            "image": SimpleUploadedFile(name, data, content_type="image/png"),
        },
    )
    assert response.status_code == 200, case  # the form again, with its errors
    messages = response.context["adminform"].form.errors.get("image", [])
    assert any(words in message for message in messages), (case, messages)


# (case, file name, bytes, words the message must contain)
HOSTILE_CSVS = [
    ("png as csv", "rows.csv", png(), "UTF-8"),
    ("zero bytes", "rows.csv", b"", "empty"),
    ("no header", "rows.csv", b"\n\n", "header"),
    ("over the limit", "rows.csv", b"thing\n" + b"cup\n" * (CSV_MAX_BYTES // 4), "larger than"),
]


@pytest.mark.parametrize(
    ("case", "name", "data", "words"), HOSTILE_CSVS, ids=[c for c, *_ in HOSTILE_CSVS]
)
def test_the_api_refuses_a_hostile_batch_csv_on_its_field(
    editor, template, nothing_kept, case, name, data, words
):
    response = client_for(editor).post(
        "/api/v1/batches/",
        {
            "prompt_version": template.pk,
            "file": SimpleUploadedFile(name, data, content_type="text/csv"),
        },
        format="multipart",
    )
    assert response.status_code in (400, 413), (case, response.content[:300])
    body = response.json()
    if response.status_code == 413:  # refused before the body is read
        assert words in body["detail"] or "larger than" in body["detail"], case
    else:
        messages = errors(response)["file"]
        assert any(words in message for message in messages), (case, messages)


@pytest.mark.parametrize(
    ("case", "name", "data", "words"), HOSTILE_CSVS, ids=[c for c, *_ in HOSTILE_CSVS]
)
def test_the_portal_refuses_a_hostile_batch_csv_on_its_field(
    portal, project, template, nothing_kept, case, name, data, words
):
    response = portal.post(
        reverse("portal:batch-new", args=[project.pk]),
        {
            "prompt_version": template.pk,
            "duration": "5",
            "action": "queue",
            "file": SimpleUploadedFile(name, data, content_type="text/csv"),
        },
    )
    assert response.status_code == 400, case
    form_errors = response.context["form"].errors  # the CSV's own refusals go on the rows box
    messages = form_errors.get("file", []) + form_errors.get("rows_text", [])
    assert any(words in message for message in messages), (case, messages)


def test_a_good_image_is_still_taken_and_stored(editor, project, media_root):
    """The watch above can see a stored file: the same request with a real image keeps one."""
    watch = Nothing(media_root)
    response = post_image_job(editor, project, "still.png", png())
    assert response.status_code == 201, response.content
    jobs, _, _, files = watch.now()
    assert jobs == watch.before[0] + 1 and len(files) == len(watch.before[3]) + 1
