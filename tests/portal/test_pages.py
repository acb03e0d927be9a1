"""Every portal page and fragment: who may see it, and what it shows."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.fixtures.html import page_without_tokens
from videos.models import JobState

pytestmark = pytest.mark.django_db


def pages(world) -> dict[str, str]:
    alpha = world.alpha
    return {
        "home": reverse("portal:home"),
        "project": reverse("portal:project", args=[alpha.project.pk]),
        "jobs": reverse("portal:project-jobs", args=[alpha.project.pk]),
        "gallery": reverse("portal:project-gallery", args=[alpha.project.pk]),
        "job": reverse("portal:job", args=[alpha.clip.pk]),
        "job-status": reverse("portal:job-status", args=[alpha.clip.pk]),
        "prompts": reverse("portal:prompts"),
        "spend": reverse("portal:spend"),
        "spend-csv": reverse("portal:spend-csv"),
        "team": reverse("portal:team"),
        "tokens": reverse("portal:tokens"),
    }


@pytest.mark.parametrize(
    "page",
    [
        "home",
        "project",
        "jobs",
        "gallery",
        "job",
        "job-status",
        "prompts",
        "spend",
        "spend-csv",
        "team",
        "tokens",
    ],
)
def test_a_signed_out_visitor_is_sent_to_sign_in(client, world, page):
    url = pages(world)[page]
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("who", ["olga", "erin", "vic"])
@pytest.mark.parametrize(
    "page",
    ["home", "project", "jobs", "gallery", "job", "job-status", "prompts", "spend", "team"],
)
def test_every_member_reads_every_page(signed_in, world, who, page):
    response = signed_in(getattr(world, who)).get(pages(world)[page])
    assert response.status_code == 200
    assert "beta" not in page_without_tokens(response)  # nothing of the other team leaks


def test_the_dashboard_shows_projects_spend_states_and_clips(signed_in, world):
    html = signed_in(world.vic).get("/").content.decode()
    assert "alpha project" in html
    assert "$0.55 spent of $10.00" in html
    assert ">Succeeded</span> 1" in html and ">Failed</span> 1" in html
    assert f"/files/jobs/{world.alpha.clip.pk}/clip/" in html  # the latest clip plays


def test_the_dashboard_says_when_submissions_are_paused(signed_in, world):
    from videos.jobs import submissions_pause

    submissions_pause("kie", code="402", reason="The kie.ai balance is empty.")
    html = signed_in(world.vic).get("/").content.decode()
    assert "Submissions are paused" in html and "The kie.ai balance is empty." in html


def test_an_empty_team_is_told_how_to_start(signed_in, world):
    from tests.fixtures.data import make_member
    from videos.models import Role, Team

    lone = make_member("lone", Team.objects.create(name="Gamma", slug="gamma"), Role.OWNER)
    html = signed_in(lone).get("/").content.decode()
    assert "No projects yet: name your first one below" in html
    assert "No clips yet" in html


def test_the_project_page_shows_the_gallery_the_failures_and_the_form(signed_in, world):
    alpha = world.alpha
    html = signed_in(world.erin).get(pages(world)["project"]).content.decode()
    assert f'src="/files/jobs/{alpha.clip.pk}/clip/"' in html
    assert "The provider refused the prompt: it names a real person." in html
    assert reverse("portal:job-retry", args=[alpha.failed.pk]) in html
    assert 'id="clip-form"' in html and ">Generate</button>" in html
    assert 'for="id_prompt">Prompt</label>' in html


def test_viewers_get_no_form_and_no_buttons(signed_in, world):
    html = signed_in(world.vic).get(pages(world)["project"]).content.decode()
    assert 'id="clip-form"' not in html
    assert "Retry</button>" not in html
    assert "editors and owners of Alpha make new ones" in html


def test_the_project_page_filters_by_state_and_prompt_text(signed_in, world):
    client = signed_in(world.vic)
    url = pages(world)["jobs"]
    failed_only = client.get(url, {"state": JobState.FAILED}).content.decode()
    assert "whale" in failed_only and "owl" not in failed_only
    by_text = client.get(url, {"q": "OWL"}).content.decode()
    assert "owl" in by_text and "whale" not in by_text
    nothing = client.get(url, {"q": "zebra"}).content.decode()
    assert "No jobs match these filters." in nothing


def test_the_job_list_pages_back_through_older_jobs_and_keeps_its_page_live(signed_in, world):
    from tests.fixtures.data import make_job

    # 25 jobs: the fixture's two, then 23 newer, each a moment after the one before.
    made = [make_job(world.alpha.project, prompt_text=f"Scene {n:02d}") for n in range(23)]
    client = signed_in(world.vic)
    page = reverse("portal:project", args=[world.alpha.project.pk])
    first = client.get(page)
    shown = [job.prompt_text for job in first.context["jobs"]]
    assert shown == [f"Scene {n:02d}" for n in range(22, 2, -1)]  # the 20 newest
    older_than = first.context["older_than"]
    assert older_than == made[3].pk and "Older jobs" in first.content.decode()

    second = client.get(page, {"before": str(older_than)})
    shown = [job.prompt_text for job in second.context["jobs"]]
    assert shown[:3] == ["Scene 02", "Scene 01", "Scene 00"] and len(shown) == 5
    html = second.content.decode()
    assert "Newest jobs" in html and "Older jobs" not in html
    # The live list asks for the same page when it polls.
    assert f"before={older_than}" in html
    fragment = client.get(pages(world)["jobs"], {"before": str(older_than)})
    assert [job.prompt_text for job in fragment.context["jobs"]] == shown

    # Filters page too; another team's job as the cursor shows the newest page.
    filtered = client.get(page, {"q": "scene", "before": str(made[10].pk)})
    assert filtered.context["jobs"][0].prompt_text == "Scene 09"
    stranger = client.get(page, {"before": str(world.beta.clip.pk)})
    assert stranger.context["jobs"][0].prompt_text == "Scene 22"
    assert not stranger.context["paged"]
    garbled = client.get(page, {"before": "' OR 1=1 --"})
    assert garbled.status_code == 200 and not garbled.context["paged"]


def test_the_live_list_polls_only_while_a_job_is_in_progress(signed_in, world):
    from tests.fixtures.data import make_job

    client = signed_in(world.vic)
    settled = client.get(pages(world)["jobs"]).content.decode()
    assert "every 2s" not in settled  # all shown are final: no more requests
    make_job(world.alpha.project, state=JobState.GENERATING)
    live = client.get(pages(world)["jobs"]).content.decode()
    assert 'hx-trigger="every 2s, jobs-changed from:body"' in live


def test_the_live_list_tells_the_gallery_when_a_clip_finished(signed_in, world):
    client = signed_in(world.vic)
    url = pages(world)["jobs"]
    same = client.get(url, {"latest_clip": str(world.alpha.clip.pk)}, HTTP_HX_REQUEST="true")
    assert "HX-Trigger" not in same
    older = client.get(url, {"latest_clip": ""}, HTTP_HX_REQUEST="true")
    assert json.loads(older["HX-Trigger"]) == {"clips-changed": {}}


def test_the_job_page_shows_the_clip_its_facts_and_its_timeline(signed_in, world):
    clip = world.alpha.clip
    html = signed_in(world.vic).get(pages(world)["job"]).content.decode()
    assert clip.asset.sha256 in html
    assert "1280 \u00d7 720 at 24 fps" in html and "0.0 MB" in html
    assert f'download="reelforge-{clip.pk}.mp4"' in html
    assert "Queued" in html and "Ready" in html and "Stored." in html
    assert "$0.55" in html


def test_the_job_status_fragment_reloads_the_page_when_the_job_finishes(signed_in, world):
    client = signed_in(world.vic)
    url = pages(world)["job-status"]
    assert client.get(url, {"state": JobState.GENERATING})["HX-Refresh"] == "true"
    assert "HX-Refresh" not in client.get(url, {"state": JobState.SUCCEEDED})


def test_the_prompt_library_shows_versions_and_what_changed(signed_in, world):
    html = signed_in(world.erin).get(pages(world)["prompts"]).content.decode()
    assert "Version 2" in html and "(current)" in html and "Version 1" in html
    assert "<ins>deep </ins>" in html
    version = world.alpha.prompt.current_version
    link = f"{reverse('portal:project', args=[world.alpha.project.pk])}?prompt_version={version.pk}"
    assert link in html  # "Generate from this"


def test_generate_from_a_saved_prompt_fills_the_form(signed_in, world):
    version = world.alpha.prompt.current_version
    html = (
        signed_in(world.erin)
        .get(pages(world)["project"], {"prompt_version": version.pk})
        .content.decode()
    )
    assert "A alpha fox runs through deep snow</textarea>" in html
    assert f'name="prompt_version" value="{version.pk}"' in html


def test_the_prompt_library_searches_prompt_text(signed_in, world):
    client = signed_in(world.erin)
    assert "alpha prompt" in client.get(pages(world)["prompts"], {"q": "FOX"}).content.decode()
    empty = client.get(pages(world)["prompts"], {"q": "zebra"}).content.decode()
    assert "No prompt mentions" in empty


def test_times_read_as_ago_with_the_exact_time_on_hover(signed_in, world):
    html = signed_in(world.vic).get(pages(world)["job"]).content.decode()
    assert '<time datetime="' in html and 'title="20' in html and "just now" in html


def test_the_players_source_streams_byte_ranges_to_members_only(signed_in, world):
    src = f"/files/jobs/{world.alpha.clip.pk}/clip/"
    assert src in signed_in(world.vic).get(pages(world)["project"]).content.decode()
    part = signed_in(world.vic).get(src, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == "bytes 100-199/1000"
    assert b"".join(part.streaming_content) == b"\x00" * 100
    assert signed_in(world.bob).get(src, HTTP_RANGE="bytes=0-9").status_code == 404
