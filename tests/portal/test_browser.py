"""The portal in a real browser (Debian's chromium, driven by Playwright), with the simulator
as the provider and a real `qcluster` worker: a member signs in, makes a text-to-video clip and
watches it reach Succeeded without reloading, plays it, makes an image-to-video clip from an
upload, sees the spend chart, and gets a 404 for another team's project. Every page is kept as
a screenshot at laptop and phone width under tests/artifacts/ (the README's come from here)."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from billing.models import EntryKind, LedgerEntry
from tests.fixtures.browser import screenshot
from tests.fixtures.data import make_member
from tests.fixtures.waiting import eventually
from videos import services
from videos.models import GenerationJob, JobState, Kind, Role

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
WIDTHS = {"laptop": 1280, "phone": 390}


def both_widths(page: Any, name: str) -> None:
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"portal-{name}-{label}.png", full_page=True)
    page.set_viewport_size({"width": WIDTHS["laptop"], "height": 900})


def a_photo(path: Path) -> Path:
    image = Image.new("RGB", (640, 360))
    image.putdata([(x // 3, 90 + y // 4, 200 - x // 4) for y in range(360) for x in range(640)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_a_member_makes_watches_and_plays_clips_in_the_portal(
    platform, browser_page, start_worker, project, other_project, tmp_path
):
    page = browser_page
    start_worker()
    olga = make_member("olga", project.team, Role.OWNER)
    services.prompt_create(
        project=project, title="Lanterns", text="Paper lanterns rise over a lake", by=olga
    )

    page.goto(f"{platform.url}/")
    page.wait_for_url("**/accounts/login/?next=/")
    both_widths(page, "sign-in")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill("olga-pw-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{platform.url}/")
    assert page.get_by_role("heading", name="Alpha").is_visible()

    # Text to video: it returns at once, and the live list shows the job reach Succeeded.
    page.get_by_role("link", name="Launch").first.click()
    page.wait_for_selector("#new-clip")
    page.evaluate("window.sameDocument = true")
    page.get_by_label("Prompt", exact=True).fill("A paper boat drifts down a rainy street at dusk")
    assert page.inner_text("[data-count-for=id_prompt]") == "47 / 1000"
    page.get_by_label("Duration").select_option("5")
    page.get_by_label("Sound").check()
    page.wait_for_function("() => document.querySelector('#estimate').innerText.includes('$0.55')")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_selector("#new-clip .banner.info")
    job = GenerationJob.objects.get(prompt_text__startswith="A paper boat")
    page.wait_for_selector(f"#job-{job.pk}[data-state=succeeded]", timeout=60_000)
    assert page.evaluate("window.sameDocument") is True  # no reload: htmx swapped the list in
    assert page.inner_text(f"#job-{job.pk} .state") == "Succeeded"

    # The gallery fetched itself again; its clip plays from the platform (Range requests).
    video = f"#gallery video[src*='{job.pk}']"
    page.wait_for_selector(video)
    duration = page.evaluate(
        """(selector) => new Promise((done) => {
            const video = document.querySelector(selector);
            video.addEventListener('loadedmetadata', () => done(video.duration), {once: true});
            video.preload = 'metadata'; video.load();
        })""",
        video,
    )
    assert duration > 0
    both_widths(page, "project")

    # Image to video, from an upload with a preview.
    page.get_by_label("Image to video").check()
    page.get_by_label("Image", exact=True).set_input_files(str(a_photo(tmp_path / "lake.png")))
    page.wait_for_selector("#image-preview img")
    page.get_by_label("Prompt", exact=True).fill("The lake's surface ripples in the wind")
    page.get_by_role("button", name="Generate").click()
    picture = eventually(
        lambda: GenerationJob.objects.filter(kind=Kind.IMAGE_TO_VIDEO).first(),
        failure=lambda: page.inner_text("#new-clip"),
    )
    page.wait_for_selector(f"#job-{picture.pk}[data-state=succeeded]", timeout=60_000)
    assert picture.source_image

    # The job page: player, metadata and timeline.
    page.goto(f"{platform.url}/jobs/{job.pk}/")
    page.wait_for_selector(".player video")
    text = page.inner_text("main")
    assert job.refresh_from_db() or job.asset.sha256 in text
    assert "Ready" in text and "$0.55" in text
    both_widths(page, "job")

    # Spend: the chart has a bar for today, the table a row per project.
    page.goto(f"{platform.url}/spend/")
    assert page.locator("svg.chart rect.bar[height]:not([height='0.0'])").count() >= 1
    spent = sum(entry.amount for entry in LedgerEntry.objects.filter(kind=EntryKind.CHARGE))
    assert spent == Decimal("0.83")  # $0.55 (5 s with sound) + $0.28 (5 s silent)
    assert "$0.83 in all" in page.text_content("#chart-title")
    both_widths(page, "spend")

    for name in ("home", "prompts", "team", "tokens"):
        page.goto(f"{platform.url}/{'' if name == 'home' else name + '/'}")
        both_widths(page, name)

    # Another team's project is not found, exactly like one that does not exist.
    response = page.goto(f"{platform.url}/projects/{other_project.pk}/")
    assert response.status == 404
    assert "Not found" in page.inner_text("main")
    assert GenerationJob.objects.filter(state=JobState.SUCCEEDED).count() == 2
