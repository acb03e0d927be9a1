"""The team's prompt library: every prompt with its versions and what each one changed."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from videos import selectors
from videos.models import PromptVersion
from videos.portal.diffs import word_changes
from videos.portal.seats import current_seat, signed_in_user
from videos.prompt_templates import variables_of


@login_required
@require_GET
def prompt_library(request: HttpRequest) -> HttpResponse:
    seat = current_seat(request)
    text = request.GET.get("q", "").strip()[:200]
    prompts = (
        selectors.prompt_list(user=signed_in_user(request))
        .filter(project__team=seat.team)
        .select_related("project")
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=PromptVersion.objects.select_related("created_by").order_by("-number"),
            )
        )
        .order_by("project__name", "title")
    )
    if text:
        prompts = prompts.filter(versions__text__icontains=text).distinct()
    library: list[dict[str, Any]] = []
    for prompt in prompts:
        versions = list(prompt.versions.all())
        library.append(
            {
                "prompt": prompt,
                "versions": [
                    {
                        "version": version,
                        "changes": word_changes(older.text, version.text) if older else None,
                        "variables": variables_of(version.text),
                    }
                    for version, older in zip(versions, [*versions[1:], None], strict=True)
                ],
            }
        )
    return render(request, "portal/prompts.html", {"seat": seat, "library": library, "query": text})
