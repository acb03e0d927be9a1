"""The workbench in a real browser (Debian's chromium, driven by Playwright): a staff editor
signs in, generates a clip from a prompt through "Generate clips" and its confirmation page,
and the live server with the simulator takes it to `succeeded`. Screenshots of the pages are
kept under tests/artifacts/ (the README's come from here)."""

from __future__ import annotations

import pytest

from tests.admin.conftest import staff
from tests.fixtures.browser import screenshot
from videos import services
from videos.models import GenerationJob, JobState, Role

pytestmark = pytest.mark.browser


def test_an_editor_generates_a_clip_from_a_prompt_in_the_browser(platform, browser_page, project):
    page = browser_page
    erin = staff("erin", project.team, Role.EDITOR)
    prompt = services.prompt_create(
        project=project,
        title="Paper boat",
        text="A paper boat drifts down a rainy street at dusk",
        by=erin,
    )
    services.prompt_update(
        prompt=prompt, by=erin, text="A paper boat drifts down a rainy street at dusk, lamps on"
    )

    page.goto(f"{platform.url}/admin/")
    page.fill("#id_username", "erin")
    page.fill("#id_password", "erin-pw-1")
    page.click("input[type=submit]")
    assert page.title() == "Editors' workbench | Reelforge"

    page.goto(f"{platform.url}/admin/videos/prompt/")
    page.check(f"input[name=_selected_action][value='{prompt.pk}']")
    page.select_option("select[name=action]", "generate_clips")
    page.click("button[name=index]")
    page.wait_for_selector("#budgets")
    assert not GenerationJob.objects.exists()  # nothing is queued before the confirmation

    page.select_option("#id_duration", "5")
    page.select_option("#id_aspect_ratio", "9:16")
    page.select_option("#id_sound", "yes")
    page.click("#update-estimate")
    page.wait_for_selector("#budgets")
    assert "$0.55" in page.inner_text("#action-rows")
    assert "$9.45" in page.inner_text("#budgets")  # of the project's $10 cap
    screenshot(page, "admin-generate-clips.png", full_page=True)

    page.click("#confirm")
    page.wait_for_url("**/admin/videos/generationjob/")
    assert "Queued 1 clips (estimated $0.55)." in page.inner_text(".messagelist")

    job = platform.wait_for(GenerationJob.objects.get(created_by=erin), timeout=30)
    assert (job.duration, job.aspect_ratio, job.sound) == (5, "9:16", True)
    assert job.prompt_version == prompt.current_version

    page.goto(f"{platform.url}/admin/videos/generationjob/")
    assert page.inner_text(".job-state") == "Succeeded"
    page.wait_for_function(
        "() => [...document.querySelectorAll('#result_list img')].every(i => i.naturalWidth > 0)"
    )
    screenshot(page, "admin-jobs.png")

    page.click(f"a[href$='/admin/videos/generationjob/{job.pk}/change/']")
    page.wait_for_selector("video")
    assert "charged $0.5500" in page.inner_text("#content-main")
    screenshot(page, "admin-job-detail.png", full_page=True)

    page.goto(f"{platform.url}/admin/")
    assert job.state == JobState.SUCCEEDED
    screenshot(page, "admin-index.png")
