"""Batches in the admin: team-scoped, with progress; "Make a batch" leads to the same preview
page as the portal's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.conftest import staff
from videos import services
from videos.batches import batch_create
from videos.models import Role

pytestmark = pytest.mark.django_db


def test_editors_see_their_teams_batches_and_reach_the_preview(client, project, other_project):
    erin = staff("erin", project.team, Role.EDITOR)
    prompt = services.prompt_create(project=project, title="Cities", text="A {thing}", by=erin)
    batch = batch_create(by=erin, prompt_version=prompt.current_version, rows=[{"thing": "cup"}])
    theirs = services.prompt_create(project=other_project, title="X", text="B {thing}", by=None)
    hidden = batch_create(by=None, prompt_version=theirs.current_version, rows=[{"thing": "a"}])
    client.force_login(erin)

    listing = client.get(reverse("admin:videos_batch_changelist")).content.decode()
    assert "0 of 1 done, $0.00 spent" in listing
    assert reverse("admin:videos_batch_change", args=[hidden.pk]) not in listing
    detail = client.get(reverse("admin:videos_batch_change", args=[batch.pk])).content.decode()
    assert reverse("portal:batch", args=[batch.pk]) in detail
    assert client.get(reverse("admin:videos_batch_change", args=[hidden.pk])).status_code == 302

    prompts = client.get(reverse("admin:videos_prompt_changelist")).content.decode()
    assert '<td class="field-variables">thing</td>' in prompts
    response = client.post(
        reverse("admin:videos_prompt_changelist"),
        {"action": "make_batch", "_selected_action": [prompt.pk]},
    )
    assert response["Location"] == (
        f"{reverse('portal:batch-new', args=[project.pk])}"
        f"?prompt_version={prompt.current_version.pk}"
    )
