"""What portal.js does in a real browser (Debian's chromium, driven by Playwright): it checks an
image's type and size before anything is sent and previews it, asks before a member is taken
out of the team, and switches teams as soon as one is chosen."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.fixtures.data import make_member
from videos import services
from videos.models import GenerationJob, Membership, Role

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-pw-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (30, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_browser_checks_an_image_before_sending_it_and_previews_it(
    platform, browser_page, project
):
    page = browser_page
    make_member("erin", project.team, Role.EDITOR)
    sign_in(page, platform.url, "erin")
    page.goto(f"{platform.url}/projects/{project.pk}/")
    page.get_by_label("Image to video").check()
    image = page.get_by_label("Image", exact=True)
    problem = page.locator("#image-problem")

    def chosen(name: str, mime: str, content: bytes) -> str:
        image.set_input_files({"name": name, "mimeType": mime, "buffer": content})
        return image.evaluate("input => input.validationMessage")

    assert chosen("notes.txt", "text/plain", b"hello") == "Choose a JPEG, PNG or WebP image."
    assert problem.inner_text() == "Choose a JPEG, PNG or WebP image." and problem.is_visible()
    page.get_by_label("Prompt", exact=True).fill("The lake's surface ripples in the wind")
    page.get_by_role("button", name="Generate").click()  # the browser holds the form back
    assert page.locator("#image-preview img").count() == 0

    too_big = b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024)
    assert chosen("huge.png", "image/png", too_big) == "The image is larger than 10 MB."
    assert problem.inner_text() == "The image is larger than 10 MB."

    assert chosen("lake.png", "image/png", png_bytes()) == ""
    assert problem.is_hidden()
    page.wait_for_selector("#image-preview img")
    assert not GenerationJob.objects.exists()  # nothing was sent while the image was refused


def test_taking_a_member_out_asks_first_and_a_no_keeps_them(platform, browser_page, project):
    page = browser_page
    make_member("olga", project.team, Role.OWNER)
    vic = make_member("vic", project.team, Role.VIEWER)
    sign_in(page, platform.url, "olga")
    page.goto(f"{platform.url}/team/")
    questions: list[str] = []
    remove = page.locator(f"form[action$='/members/{vic.pk}/remove/'] button")

    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    remove.click()
    page.wait_for_timeout(300)  # a form sent anyway would have left the page by now
    assert questions == [f"Take vic out of {project.team.name}?"]
    assert Membership.objects.filter(user=vic, team=project.team).exists()

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        remove.click()
    assert not Membership.objects.filter(user=vic, team=project.team).exists()


def test_choosing_a_team_switches_to_it_at_once(platform, browser_page, project, other_project):
    page = browser_page
    olga = make_member("olga", project.team, Role.OWNER)
    services.membership_add_user(team=other_project.team, user=olga, role=Role.VIEWER)
    sign_in(page, platform.url, "olga")

    with page.expect_navigation():
        page.get_by_label("Team").select_option(label=other_project.team.name)
    assert page.get_by_role("heading", name=other_project.team.name).is_visible()
