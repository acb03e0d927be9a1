"""Batches in the portal: preview with every row's errors, queue all, follow, act."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.models import Budget
from videos import services
from videos.models import Batch, GenerationJob, JobState

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(world):
    prompt = services.prompt_create(
        project=world.alpha.project, title="Cities", text="A {product} in {city}", by=world.olga
    )
    return prompt.current_version


def form(template, **fields):
    return {
        "prompt_version": template.pk,
        "rows_text": "product,city\nteapot,Lyon\nkettle,Oslo\n",
        "duration": "5",
        "action": "preview",
        **fields,
    }


def test_a_preview_shows_each_rows_prompt_and_price_and_queues_nothing(signed_in, world, template):
    url = reverse("portal:batch-new", args=[world.alpha.project.pk])
    html = signed_in(world.erin).post(url, form(template)).content.decode()
    assert "A teapot in Lyon" in html and "A kettle in Oslo" in html
    assert "Preview: 2 rows, $0.56 of $9.45 left this month" in html
    assert ">Queue 2 clips for $0.56</button>" in html
    assert not Batch.objects.exists()


def test_a_preview_lists_every_rows_errors_and_offers_no_queue(signed_in, world, template):
    url = reverse("portal:batch-new", args=[world.alpha.project.pk])
    rows = "product,city,sound\nteapot,,\nkettle,Oslo,loud\n"
    html = signed_in(world.erin).post(url, form(template, rows_text=rows)).content.decode()
    assert "Row 1, city: No value for {city}." in html
    assert "Row 2, sound: Give sound as yes or no." in html
    assert "Queue" not in html.split('id="preview-heading"')[0].split("Preview</button>")[1]
    # Queueing anyway is refused whole.
    signed_in(world.erin).post(url, form(template, rows_text=rows, action="queue"))
    assert not Batch.objects.exists()


def test_an_uploaded_csv_is_queued_and_the_batch_page_follows_it(signed_in, world, template):
    client = signed_in(world.erin)
    url = reverse("portal:batch-new", args=[world.alpha.project.pk])
    upload = SimpleUploadedFile("rows.csv", b"product,city\nteapot,Lyon\n", "text/csv")
    preview = client.post(url, form(template, rows_text="", file=upload)).content.decode()
    assert "product,city\nteapot,Lyon" in preview  # kept in the box for the queue button
    response = client.post(
        url, form(template, rows_text="product,city\nteapot,Lyon\n", action="queue")
    )
    batch = Batch.objects.get()
    assert response["Location"] == reverse("portal:batch", args=[batch.pk])
    page = client.get(response["Location"]).content.decode()
    assert "0 of 1 done" in page and "teapot" in page and "Lyon" in page
    assert 'hx-trigger="every 2s"' in page
    assert reverse("api:batch-results-csv", args=[batch.pk]) in page


def test_a_batch_over_the_budget_is_refused_on_the_form(signed_in, world, template):
    Budget.objects.filter(project=world.alpha.project).update(monthly_cap_usd=Decimal("0.60"))
    url = reverse("portal:batch-new", args=[world.alpha.project.pk])
    html = signed_in(world.erin).post(url, form(template)).content.decode()
    assert "cannot cover these 2 jobs ($0.56): $0.05 of $0.60 is left" in html
    assert "Queue 2 clips" not in html


def test_batch_actions_need_an_editor_and_another_team_sees_nothing(signed_in, world, template):
    from videos.batches import batch_create

    batch = batch_create(
        by=world.erin, prompt_version=template, rows=[{"product": "a", "city": "b"}]
    )
    assert signed_in(world.bob).get(reverse("portal:batch", args=[batch.pk])).status_code == 404
    cancel = reverse("portal:batch-action", args=[batch.pk, "cancel-remaining"])
    assert signed_in(world.vic).post(cancel).status_code == 403
    assert signed_in(world.bob).post(cancel).status_code == 404
    signed_in(world.erin).post(cancel)
    assert GenerationJob.objects.get(batch=batch).state == JobState.CANCELED
    new = reverse("portal:batch-new", args=[world.alpha.project.pk])
    assert signed_in(world.vic).get(new).status_code == 403


def test_rows_can_animate_uploaded_images_named_in_an_image_column(signed_in, world, template):
    from tests.api.conftest import PNG_BYTES

    url = reverse("portal:batch-new", args=[world.alpha.project.pk])
    rows = "product,city,image\nteapot,Lyon,teapot.png\nkettle,Oslo,\ncup,Rome,nowhere.png\n"
    images = [SimpleUploadedFile("teapot.png", PNG_BYTES, "image/png")]
    html = (
        signed_in(world.erin)
        .post(url, form(template, rows_text=rows, images=images))
        .content.decode()
    )
    assert "Row 3, image: No uploaded image is named &#x27;nowhere.png&#x27;." in html
    rows = "product,city,image\nteapot,Lyon,teapot.png\nkettle,Oslo,\n"
    images = [SimpleUploadedFile("teapot.png", PNG_BYTES, "image/png")]
    signed_in(world.erin).post(url, form(template, rows_text=rows, images=images, action="queue"))
    first, second = Batch.objects.get().jobs.order_by("batch_row")
    assert (first.kind, bool(first.source_image), first.aspect_ratio) == (
        "image_to_video",
        True,
        "",
    )
    assert (second.kind, second.aspect_ratio) == ("text_to_video", "16:9")


def test_the_batch_form_offers_a_negative_prompt_and_mode_only_on_the_kling_api(
    signed_in, world, template
):
    client = signed_in(world.erin)
    project = world.alpha.project
    url = reverse("portal:batch-new", args=[project.pk])
    assert 'name="negative_prompt"' not in client.get(url).content.decode()  # kie.ai

    services.project_update(project=project, provider="kling")
    assert 'name="negative_prompt"' in client.get(url).content.decode()
    client.post(url, form(template, negative_prompt="no people", mode="pro", action="queue"))
    batch = Batch.objects.get()
    assert (batch.negative_prompt, batch.mode) == ("no people", "pro")
    assert {(job.negative_prompt, job.mode) for job in batch.jobs.all()} == {("no people", "pro")}
