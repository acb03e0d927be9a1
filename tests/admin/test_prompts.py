"""Prompts through the admin: the text is written as versions by the prompt services, so a
prompt always has one, and unchanged text adds none."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.pages import form_data, page_text
from videos import services
from videos.models import Prompt, PromptVersion

pytestmark = pytest.mark.django_db
ADD_URL = reverse("admin:videos_prompt_add")


def change_url(prompt: Prompt) -> str:
    return reverse("admin:videos_prompt_change", args=[prompt.pk])


@pytest.fixture
def prompt(project, alice) -> Prompt:
    return services.prompt_create(
        project=project, title="Fox", text="A red fox runs through snow", by=alice
    )


def texts(prompt: Prompt) -> list[tuple[int, str]]:
    return list(prompt.versions.order_by("number").values_list("number", "text"))


def test_adding_a_prompt_makes_version_1_with_its_text(admin_client, project, admin_user):
    data = form_data(admin_client.get(ADD_URL))
    assert "text" in data
    data.update(project=project.pk, title="Owl", text="An owl blinks at dusk")

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 302
    prompt = Prompt.objects.get(title="Owl")
    assert texts(prompt) == [(1, "An owl blinks at dusk")]
    assert prompt.versions.get().created_by == admin_user


def test_changed_text_makes_version_2(admin_client, prompt, admin_user):
    data = form_data(admin_client.get(change_url(prompt)))
    assert data["text"] == "A red fox runs through snow"
    data["text"] = "A red fox runs through snow\nat dawn"

    assert admin_client.post(change_url(prompt), data).status_code == 302

    assert texts(prompt) == [
        (1, "A red fox runs through snow"),
        (2, "A red fox runs through snow\nat dawn"),
    ]
    assert prompt.current_version.created_by == admin_user


def test_unchanged_text_makes_no_version(admin_client, prompt):
    services.prompt_update(prompt=prompt, by=None, text="Two lines:\nfox and snow")
    data = form_data(admin_client.get(change_url(prompt)))
    data["title"] = "Fox at dawn"
    # As a browser sends a textarea: its line breaks as CRLF.
    data["text"] = data["text"].replace("\n", "\r\n")

    assert admin_client.post(change_url(prompt), data).status_code == 302

    prompt.refresh_from_db()
    assert prompt.title == "Fox at dawn"
    assert [number for number, _ in texts(prompt)] == [1, 2]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "The prompt must not be blank."),
        ("   \r\n ", "The prompt must not be blank."),
        ("x" * 1001, "The prompt must be at most 1000 characters."),
    ],
)
def test_bad_text_is_a_form_error_when_adding(admin_client, project, text, message):
    data = form_data(admin_client.get(ADD_URL))
    data.update(project=project.pk, title="Owl", text=text)

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    assert message in page_text(response)
    assert not Prompt.objects.exists()
    assert not PromptVersion.objects.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "The prompt must not be blank."),
        ("x" * 1001, "The prompt must be at most 1000 characters."),
    ],
)
def test_bad_text_is_a_form_error_when_changing(admin_client, prompt, text, message):
    data = form_data(admin_client.get(change_url(prompt)))
    data.update(title="Renamed", text=text)

    response = admin_client.post(change_url(prompt), data)

    assert response.status_code == 200
    assert message in page_text(response)
    prompt.refresh_from_db()
    assert prompt.title == "Fox"
    assert texts(prompt) == [(1, "A red fox runs through snow")]


def test_1000_characters_are_enough(admin_client, project):
    data = form_data(admin_client.get(ADD_URL))
    data.update(project=project.pk, title="Long", text="x" * 1000)

    assert admin_client.post(ADD_URL, data).status_code == 302
    assert texts(Prompt.objects.get()) == [(1, "x" * 1000)]


def test_versions_show_read_only_newest_first(admin_client, prompt):
    services.prompt_update(prompt=prompt, by=None, text="A grey fox")
    page = admin_client.get(change_url(prompt))

    versions = page.context["inline_admin_formsets"][0]
    assert [form.instance.number for form in versions.formset.forms] == [2, 1]
    assert not versions.has_add_permission
    assert not versions.has_change_permission
    assert not versions.has_delete_permission


def test_a_prompt_is_never_deleted(admin_client, prompt):
    delete_url = reverse("admin:videos_prompt_delete", args=[prompt.pk])
    assert admin_client.get(delete_url).status_code == 403
