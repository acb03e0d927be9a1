"""Prompts with versions: editing the text adds a version, old ones are kept."""

from __future__ import annotations

import pytest

from videos.models import Prompt, PromptVersion

pytestmark = pytest.mark.django_db

PROMPTS = "/api/v1/prompts/"


@pytest.fixture
def prompt(alice_api, project) -> dict:
    response = alice_api.post(PROMPTS, {"project": project.pk, "title": "Fox", "text": "A red fox"})
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_new_prompt_has_version_1(prompt, project):
    assert (prompt["project"], prompt["title"], prompt["text"], prompt["version"]) == (
        project.pk,
        "Fox",
        "A red fox",
        1,
    )


def test_new_text_makes_a_version_and_keeps_the_old(alice_api, erin_api, prompt):
    url = f"{PROMPTS}{prompt['id']}/"
    assert erin_api.patch(url, {"text": "A red fox at dawn"}).json()["version"] == 2
    assert alice_api.patch(url, {"text": "A red fox at dawn"}).json()["version"] == 2  # unchanged
    renamed = alice_api.patch(url, {"title": "Dawn fox"}).json()
    assert (renamed["title"], renamed["version"]) == ("Dawn fox", 2)

    versions = alice_api.get(f"{url}versions/").json()["results"]
    assert [(v["number"], v["text"]) for v in versions] == [
        (2, "A red fox at dawn"),
        (1, "A red fox"),
    ]
    assert versions[0]["created_by"] == "erin"


def test_a_version_can_be_used_for_a_job(alice_api, prompt, project):
    version = alice_api.get(f"{PROMPTS}{prompt['id']}/versions/").json()["results"][0]
    response = alice_api.post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "text_to_video", "prompt_version": version["id"]},
    )
    assert response.status_code == 201
    assert response.json()["prompt"] == "A red fox"


def test_prompts_filter_by_project(alice_api, prompt, team):
    from videos.models import Project

    other = Project.objects.create(team=team, name="Other")
    alice_api.post(PROMPTS, {"project": other.pk, "title": "Owl", "text": "An owl"})
    assert [
        p["title"] for p in alice_api.get(f"{PROMPTS}?project={other.pk}").json()["results"]
    ] == ["Owl"]
    assert len(alice_api.get(PROMPTS).json()["results"]) == 2
    assert alice_api.get(f"{PROMPTS}?project=abc").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"title": "T", "text": "x" * 1001},
        {"title": "T", "text": "  "},
        {"title": "", "text": "A"},
        {"title": "T"},
    ],
)
def test_invalid_prompts_are_refused(alice_api, project, body):
    response = alice_api.post(PROMPTS, {"project": project.pk, **body})
    assert response.status_code == 400
    assert not Prompt.objects.exists()


def test_too_long_new_text_is_refused(alice_api, prompt):
    response = alice_api.patch(f"{PROMPTS}{prompt['id']}/", {"text": "x" * 1001})
    assert response.status_code == 400
    assert PromptVersion.objects.count() == 1


def test_viewers_read_prompts_but_cannot_write(vic_api, prompt, project):
    url = f"{PROMPTS}{prompt['id']}/"
    assert vic_api.get(url).status_code == 200
    assert vic_api.patch(url, {"text": "Changed"}).status_code == 403
    assert (
        vic_api.post(PROMPTS, {"project": project.pk, "title": "T", "text": "A"}).status_code == 403
    )
    assert PromptVersion.objects.count() == 1


def test_another_teams_prompts_are_not_found(bob_api, prompt, project):
    url = f"{PROMPTS}{prompt['id']}/"
    assert bob_api.get(url).status_code == 404
    assert bob_api.patch(url, {"text": "Mine"}).status_code == 404
    assert bob_api.get(f"{url}versions/").status_code == 404
    assert bob_api.get(PROMPTS).json()["results"] == []
    response = bob_api.post(PROMPTS, {"project": project.pk, "title": "T", "text": "A"})
    assert response.status_code == 400
