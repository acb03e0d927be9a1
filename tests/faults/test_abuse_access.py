"""Another team's objects through every URL that names an object: the API, the portal, the
file views and the admin answer exactly as for an object that does not exist, and change
nothing.

The URLs come from the resolver, not from a list kept by hand: a route whose path takes an
object id must be in `FOREIGN` (API, portal, files), have its model in `ADMIN_OBJECTS` (admin),
or be in `NOT_BY_MEMBERSHIP` with the reason it is not guarded by team membership, or the first
test fails. A new endpoint cannot be forgotten.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.api.conftest import client_for
from tests.faults.teams import BETA_MARKERS, team_snapshot, two_teams
from videos.models import GenerationJob, Project

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

METHODS = ["get", "post", "put", "patch", "delete"]
# Path parameters that name an object: by converter, or by name for the API's `<str:...>` ids.
ID_CONVERTERS = {"IntConverter", "UUIDConverter", "PathConverter"}
ID_NAME = re.compile(r"(^|_)(id|pk|token|uidb64)$")
MISSING_INT = 987654
MISSING_UUID = uuid.UUID("00000000-0000-4000-8000-00000000beef")

# Routes with an id that team membership does not guard, and why.
NOT_BY_MEMBERSHIP = {
    "kie-callback": "the provider's callback: its per-job token is the credential "
    "(tests/faults/test_forged.py)",
    "clip-link": "a signed share link: its signature is the credential (anyone holding it "
    "may watch the clip)",
    "password_reset_confirm": "Django's password reset link from the email: its token is "
    "the credential",
}

# Routes whose "not found" is deliberately a redirect back with a message (a double click or
# a stale page is not an error page); for another team's object it must be the same redirect.
NOT_FOUND_REDIRECTS = {
    "portal:invitation-answer": "portal:home",
    "portal:invitation-revoke": "portal:team",
    "portal:token-revoke": "portal:tokens",
}

Kwargs = dict[str, Any]

# Route name -> the URL arguments that name team B's objects (several when a route takes two
# ids: each with team B's, and team A's first id with team B's second).
FOREIGN: dict[str, Callable[[SimpleNamespace], list[Kwargs]]] = {
    # API
    "api:api-token": lambda w: [{"token_id": w.beta.api_token.pk}],
    "api:team-members": lambda w: [{"team_id": w.beta.team.pk}],
    "api:team-member": lambda w: [
        {"team_id": w.beta.team.pk, "user_id": w.bob.pk},
        {"team_id": w.alpha.team.pk, "user_id": w.bob.pk},
    ],
    "api:team-leave": lambda w: [{"team_id": w.beta.team.pk}],
    "api:team-invitations": lambda w: [{"team_id": w.beta.team.pk}],
    "api:team-invitation": lambda w: [
        {"team_id": w.beta.team.pk, "invitation_id": w.beta.invitation.pk},
        {"team_id": w.alpha.team.pk, "invitation_id": w.beta.invitation.pk},
    ],
    "api:invitation-accept": lambda w: [{"invitation_id": w.beta.invitation.pk}],
    "api:invitation-decline": lambda w: [{"invitation_id": w.beta.invitation.pk}],
    "api:project": lambda w: [{"project_id": w.beta.project.pk}],
    "api:prompt": lambda w: [{"prompt_id": w.beta.prompt.pk}],
    "api:prompt-versions": lambda w: [{"prompt_id": w.beta.prompt.pk}],
    "api:job": lambda w: [{"job_id": w.beta.clip.pk}, {"job_id": w.beta.queued.pk}],
    "api:job-cancel": lambda w: [{"job_id": w.beta.queued.pk}],
    "api:job-retry": lambda w: [{"job_id": w.beta.failed.pk}],
    "api:job-video": lambda w: [{"job_id": w.beta.clip.pk}],
    "api:job-poster": lambda w: [{"job_id": w.beta.clip.pk}],
    "api:job-video-url": lambda w: [{"job_id": w.beta.clip.pk}],
    "api:batch": lambda w: [{"batch_id": w.beta.batch.pk}],
    "api:batch-cancel-remaining": lambda w: [{"batch_id": w.beta.batch.pk}],
    "api:batch-retry-failed": lambda w: [{"batch_id": w.beta.batch.pk}],
    "api:batch-results-csv": lambda w: [{"batch_id": w.beta.batch.pk}],
    "api:batch-clips-zip": lambda w: [{"batch_id": w.beta.batch.pk}],
    "api:webhook": lambda w: [{"webhook_id": w.beta.webhook.pk}],
    "api:webhook-rotate-secret": lambda w: [{"webhook_id": w.beta.webhook.pk}],
    "api:webhook-test": lambda w: [{"webhook_id": w.beta.webhook.pk}],
    "api:webhook-deliveries": lambda w: [{"webhook_id": w.beta.webhook.pk}],
    "api:webhook-resend": lambda w: [
        {"webhook_id": w.beta.webhook.pk, "delivery_id": w.beta.delivery.pk},
        {"webhook_id": w.alpha.webhook.pk, "delivery_id": w.beta.delivery.pk},
    ],
    # Stored files
    "job-clip": lambda w: [{"job_id": w.beta.clip.pk}],
    "job-poster": lambda w: [{"job_id": w.beta.clip.pk}],
    "job-source-image": lambda w: [{"job_id": w.beta.clip.pk}],
    # Portal
    "portal:invitation-answer": lambda w: [
        {"invitation_id": w.beta.invitation.pk, "answer": answer} for answer in ("accept", "no")
    ],
    "portal:project": lambda w: [{"project_id": w.beta.project.pk}],
    "portal:project-jobs": lambda w: [{"project_id": w.beta.project.pk}],
    "portal:project-gallery": lambda w: [{"project_id": w.beta.project.pk}],
    "portal:clip-create": lambda w: [{"project_id": w.beta.project.pk}],
    "portal:clip-estimate": lambda w: [{"project_id": w.beta.project.pk}],
    "portal:budget-set": lambda w: [{"project_id": w.beta.project.pk}],
    "portal:batch-new": lambda w: [{"project_id": w.beta.project.pk}],
    "portal:webhooks": lambda w: [{"project_id": w.beta.project.pk}],
    "portal:webhook-action": lambda w: [
        {"project_id": project, "endpoint_id": w.beta.webhook.pk, "action": action}
        for project in (w.beta.project.pk, w.alpha.project.pk)
        for action in ("enable", "disable", "rotate", "test", "delete", "resend")
    ],
    "portal:batch": lambda w: [{"batch_id": w.beta.batch.pk}],
    "portal:batch-progress": lambda w: [{"batch_id": w.beta.batch.pk}],
    "portal:batch-action": lambda w: [
        {"batch_id": w.beta.batch.pk, "action": action}
        for action in ("cancel-remaining", "retry-failed")
    ],
    "portal:job": lambda w: [{"job_id": w.beta.clip.pk}],
    "portal:job-status": lambda w: [{"job_id": w.beta.clip.pk}],
    "portal:job-cancel": lambda w: [{"job_id": w.beta.queued.pk}],
    "portal:job-retry": lambda w: [{"job_id": w.beta.failed.pk}],
    "portal:invitation-revoke": lambda w: [{"invitation_id": w.beta.invitation.pk}],
    "portal:member-role": lambda w: [{"user_id": w.bob.pk}],
    "portal:member-remove": lambda w: [{"user_id": w.bob.pk}],
    "portal:token-revoke": lambda w: [{"token_id": w.beta.api_token.pk}],
}

# Model label -> the id of team B's row of it in the admin's URLs. A model that belongs to no
# team has a row that a team's staff may not open either (superusers only).
ADMIN_OBJECTS: dict[str, Callable[[SimpleNamespace], Any]] = {
    "videos.Team": lambda w: w.beta.team.pk,
    "videos.Membership": lambda w: w.beta.membership.pk,
    "videos.Invitation": lambda w: w.beta.invitation.pk,
    "videos.Project": lambda w: w.beta.project.pk,
    "videos.Prompt": lambda w: w.beta.prompt.pk,
    "videos.PromptVersion": lambda w: w.beta.version.pk,
    "videos.Batch": lambda w: w.beta.batch.pk,
    "videos.GenerationJob": lambda w: w.beta.clip.pk,
    "videos.JobEvent": lambda w: w.beta.event.pk,
    "videos.Asset": lambda w: w.beta.asset.pk,
    "videos.WebhookEndpoint": lambda w: w.beta.webhook.pk,
    "videos.WebhookDelivery": lambda w: w.beta.delivery.pk,
    "videos.ProviderAccount": lambda w: w.unowned.account.pk,
    "billing.Budget": lambda w: w.beta.budget.pk,
    "billing.LedgerEntry": lambda w: w.beta.entry.pk,
    "billing.Price": lambda w: w.unowned.price.pk,
    "auth.User": lambda w: w.bob.pk,
    "auth.Group": lambda w: w.unowned.group.pk,
    "authtoken.TokenProxy": lambda w: w.bob.pk,  # DRF names a token by its user
    "django_q.Schedule": lambda w: w.unowned.schedule.pk,
    "django_q.Success": lambda w: w.unowned.success.pk,
    "django_q.Failure": lambda w: w.unowned.failure.pk,
    "django_q.OrmQ": lambda w: w.unowned.ormq.pk,
}


@dataclass(frozen=True)
class Route:
    """One URL pattern: its name (an unnamed alias takes its named twin's), its path with
    converters, and which of its parameters name objects."""

    name: str
    path: str
    converters: dict[str, str]

    @property
    def ids(self) -> list[str]:
        return [
            param
            for param, converter in self.converters.items()
            if converter in ID_CONVERTERS or ID_NAME.search(param)
        ]

    def url(self, kwargs: Kwargs) -> str:
        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), self.path)


def routes() -> Iterator[Route]:
    """Every URL pattern of the project, walked from the root resolver."""

    def walk(patterns: list[Any], prefix: str, namespace: str) -> Iterator[Route]:
        named: dict[Any, str] = {
            p.callback: p.name for p in patterns if isinstance(p, URLPattern) and p.name
        }
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}{pattern.namespace}:"
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
                continue
            name = pattern.name or named.get(pattern.callback)
            converters = {
                param: type(converter).__name__
                for param, converter in pattern.pattern.converters.items()
            }
            # Regex patterns (the admin's app index, the catch-alls) name no object.
            yield Route(
                f"{namespace}{name}" if name else "",
                prefix + str(pattern.pattern),
                converters,
            )

    yield from walk(get_resolver().url_patterns, "", "")


def admin_model(route: Route) -> str | None:
    """The label of the model whose admin serves `route`, or None for other admin routes."""
    match = re.match(r"admin/(\w+)/(\w+)/", route.path)
    if not match:
        return None
    try:
        return apps.get_model(match.group(1), match.group(2))._meta.label
    except LookupError:
        return None


def id_routes() -> list[Route]:
    return [route for route in routes() if route.ids]


def missing(kwargs: Kwargs, ids: list[str]) -> Kwargs:
    """The same arguments with every id replaced by one that names nothing."""
    return {
        key: (
            (MISSING_UUID if isinstance(value, uuid.UUID) else MISSING_INT) if key in ids else value
        )
        for key, value in kwargs.items()
    }


def content(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def show(response: Any, kwargs: Kwargs | None = None) -> tuple[int, str]:
    """Status and Location; with `kwargs`, the Location as if it named those objects (Django's
    admin redirects /<id>/ to /<id>/change/)."""
    location = response.get("Location", "")
    for value in (kwargs or {}).values():
        location = location.replace(str(value), "{id}")
    return response.status_code, location


def post_data(world: SimpleNamespace) -> dict[str, Any]:
    """A body that passes the forms and serializers, so that the object is what stops it."""
    beta = world.beta
    return {
        "name": "Hijacked",
        "title": "Hijacked",
        "text": "Hijacked {x}",
        "role": "viewer",
        "enabled": "false",
        "kind": "text_to_video",
        "prompt": "Hijacked clip",
        "duration": "5",
        "request_id": "hijack-1",
        "delivery": beta.delivery.pk,
        "url": "https://hijack.example.com/",
        "events": "job.succeeded",
        "rows_text": "x\n1\n",
        "action": "queue",
        "monthly_budget_usd": "1",
        f"p{beta.project.pk}-monthly_cap_usd": "1",
        "post": "yes",
    }


@pytest.fixture
def world(team, other_team, settings) -> SimpleNamespace:
    # Hundreds of requests in one test: no rate may stop them before the object does.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "user": None,
            "team": None,
            "job_read": None,
        },
    }
    return two_teams(team, other_team)


def test_every_route_with_an_id_is_covered_or_allowed_with_a_reason():
    uncovered = []
    for route in id_routes():
        if route.name.startswith("admin:") or route.path.startswith("admin/"):
            model = admin_model(route)
            covered = (model in ADMIN_OBJECTS) if model else route.name == "admin:view_on_site"
        else:
            covered = route.name in FOREIGN or route.name in NOT_BY_MEMBERSHIP
        if not covered:
            uncovered.append(f"{route.name or '(unnamed)'} {route.path}")
    assert not uncovered, (
        "routes that take an object id without a cross-team case in FOREIGN / ADMIN_OBJECTS "
        "or a reason in NOT_BY_MEMBERSHIP:\n" + "\n".join(uncovered)
    )
    # And no entry outlives its route.
    names = {route.name for route in id_routes()}
    assert set(FOREIGN) <= names and set(NOT_BY_MEMBERSHIP) <= names


def assert_shows_nothing(response: Any, what: str) -> None:
    body = content(response).decode(errors="replace")
    shown = [marker for marker in BETA_MARKERS if marker in body]
    assert not shown, f"{what} shows team B's {shown}"


def test_another_teams_objects_are_not_found_through_the_api_portal_and_files(world):
    before = team_snapshot(world.beta.team)
    api = client_for(world.olive)
    web = Client()
    web.force_login(world.olive)
    data = post_data(world)
    checked = 0
    for route in id_routes():
        if route.path.startswith("admin/") or route.name in NOT_BY_MEMBERSHIP:
            continue
        client = api if route.path.startswith("api/") else web
        for kwargs in FOREIGN[route.name](world):
            foreign_url = route.url(kwargs)
            missing_url = route.url(missing(kwargs, route.ids))
            found_for_some_method = False
            for method in METHODS:
                send = getattr(client, method)
                body = data if method != "get" else {}
                extra = {"format": "json"} if client is api and method != "get" else {}
                foreign = send(foreign_url, body, **extra)
                absent = send(missing_url, body, **extra)
                what = f"{method.upper()} {foreign_url} ({route.name})"
                assert_shows_nothing(foreign, what)
                assert show(foreign) == show(absent), (what, show(foreign), show(absent))
                if route.name in NOT_FOUND_REDIRECTS and foreign.status_code == 302:
                    assert foreign["Location"] == reverse(NOT_FOUND_REDIRECTS[route.name]), what
                    found_for_some_method = True
                else:
                    assert foreign.status_code in (404, 405), (what, foreign.status_code)
                    found_for_some_method |= foreign.status_code == 404
                checked += 1
            assert found_for_some_method, f"{foreign_url} ({route.name}) takes no method at all"
    assert team_snapshot(world.beta.team) == before
    assert checked > 300


def test_another_teams_objects_are_not_found_in_the_admin(world):
    before = team_snapshot(world.beta.team)
    web = Client()
    web.force_login(world.olive)  # staff, owner of Alpha, not a superuser
    index = reverse("admin:index")
    checked = 0
    for route in id_routes():
        if not route.path.startswith("admin/"):
            continue
        if route.name == "admin:view_on_site":
            objects = [world.beta.clip, world.beta.project]
            cases = [
                {"content_type_id": ContentType.objects.get_for_model(obj).pk, "object_id": obj.pk}
                for obj in objects
            ]
        else:
            model = admin_model(route)
            assert model is not None, route
            object_id = ADMIN_OBJECTS[model](world)
            cases = [{param: object_id for param in route.ids}]
        for kwargs in cases:
            foreign_url = route.url(kwargs)
            missing_url = route.url(missing(kwargs, route.ids))
            for method in ("get", "post"):
                send = getattr(web, method)
                body = {"post": "yes"} if method == "post" else {}
                foreign = send(foreign_url, body)
                absent = send(missing_url, body)
                what = f"{method.upper()} {foreign_url} ({route.name or 'redirect'})"
                assert_shows_nothing(foreign, what)
                # Django's admin answers an object it cannot find with a redirect (to the
                # index, or from /<id>/ to /<id>/change/); an admin only superusers open
                # refuses before it looks (403); the same for team B's object as for none.
                answers = (show(foreign, kwargs), show(absent, missing(kwargs, route.ids)))
                assert answers[0] == answers[1], (what, answers)
                assert foreign.status_code in (302, 403, 404), (what, foreign.status_code)
                if foreign.status_code == 302:
                    location = foreign["Location"]
                    assert location == index or location.endswith("/change/"), (what, location)
                checked += 1
    assert team_snapshot(world.beta.team) == before
    assert checked > 150


# Ids in query strings: (client, path with "{id}" where team B's object goes, team B's id).
QUERY_IDS: list[tuple[str, str, Callable[[SimpleNamespace], Any]]] = [
    ("api", "/api/v1/jobs/?project={id}", lambda w: w.beta.project.pk),
    ("api", "/api/v1/prompts/?project={id}", lambda w: w.beta.project.pk),
    ("api", "/api/v1/spend/?project={id}", lambda w: w.beta.project.pk),
    ("portal", "/projects/{alpha}/?prompt_version={id}", lambda w: w.beta.version.pk),
    ("portal", "/projects/{alpha}/batches/new/?prompt_version={id}", lambda w: w.beta.version.pk),
    ("admin", "/admin/videos/generationjob/?project__id__exact={id}", lambda w: w.beta.project.pk),
    ("admin", "/admin/billing/ledgerentry/?project__id__exact={id}", lambda w: w.beta.project.pk),
    ("admin", "/admin/billing/ledgerentry/export/?project={id}", lambda w: w.beta.project.pk),
    ("admin", "/admin/videos/prompt/?project__id__exact={id}", lambda w: w.beta.project.pk),
]


def test_ids_of_another_team_in_query_strings_find_nothing(world):
    api = client_for(world.olive)
    web = Client()
    web.force_login(world.olive)
    for kind, template, foreign_id in QUERY_IDS:
        client = api if kind == "api" else web
        path = template.replace("{alpha}", str(world.alpha.project.pk))
        foreign = client.get(path.replace("{id}", str(foreign_id(world))))
        absent = client.get(path.replace("{id}", str(MISSING_INT)))
        body = content(foreign)
        shown = [marker for marker in BETA_MARKERS if marker.encode() in body]
        assert not shown, f"{path} shows team B's {shown}"
        assert show(foreign) == show(absent), (path, show(foreign), show(absent))
        if kind == "api" or template.endswith("export/?project={id}"):
            assert body == content(absent), path  # the same empty answer


# Ids in request bodies: (client, path, body naming team B's object as "{id}", team B's id).
CLIP = {"kind": "text_to_video", "prompt": "A heron lands", "duration": 5, "aspect_ratio": "16:9"}
BODY_IDS: list[tuple[str, str, dict[str, Any], Callable[[SimpleNamespace], Any]]] = [
    ("api", "/api/v1/jobs/", {**CLIP, "project": "{id}"}, lambda w: w.beta.project.pk),
    (
        "api",
        "/api/v1/jobs/",
        {"project": "{alpha}", "kind": "text_to_video", "prompt_version": "{id}", "duration": 5},
        lambda w: w.beta.version.pk,
    ),
    (
        "api",
        "/api/v1/jobs/batch/",
        {"jobs": [{**CLIP, "project": "{id}"}]},
        lambda w: w.beta.project.pk,
    ),
    ("api", "/api/v1/estimate/", {**CLIP, "project": "{id}"}, lambda w: w.beta.project.pk),
    (
        "api",
        "/api/v1/prompts/",
        {"project": "{id}", "title": "t", "text": "t"},
        lambda w: w.beta.project.pk,
    ),
    (
        "api",
        "/api/v1/webhooks/",
        {"project": "{id}", "url": "https://hooks.example.com/", "events": ["job.succeeded"]},
        lambda w: w.beta.project.pk,
    ),
    (
        "api",
        "/api/v1/batches/",
        {"prompt_version": "{id}", "rows": [{}]},
        lambda w: w.beta.version.pk,
    ),
    (
        "api",
        "/api/v1/batches/preview/",
        {"prompt_version": "{id}", "rows": [{}]},
        lambda w: w.beta.version.pk,
    ),
    ("api", "/api/v1/projects/", {"name": "Hijack", "team": "{id}"}, lambda w: w.beta.team.pk),
    (
        "portal",
        "/projects/{alpha}/clips/new/",
        {"kind": "text_to_video", "prompt_version": "{id}", "duration": "5", "request_id": "r"},
        lambda w: w.beta.version.pk,
    ),
    (
        "portal",
        "/projects/{alpha}/batches/new/",
        {"prompt_version": "{id}", "rows_text": "x\n1\n", "action": "queue"},
        lambda w: w.beta.version.pk,
    ),
    ("portal", "/teams/switch/", {"team": "{id}"}, lambda w: w.beta.team.pk),
    (
        "admin",
        "/admin/videos/generationjob/add/",
        {**CLIP, "project": "{id}"},
        lambda w: w.beta.project.pk,
    ),
    (
        "admin",
        "/admin/videos/prompt/add/",
        {"project": "{id}", "title": "Hijack", "text": "Hijack"},
        lambda w: w.beta.project.pk,
    ),
    (
        "admin",
        "/admin/videos/project/add/",
        {"team": "{id}", "name": "Hijack"},
        lambda w: w.beta.team.pk,
    ),
]


def filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: filled(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [filled(item, ids) for item in value]
    if isinstance(value, str) and value in ids:
        return ids[value]
    return value


def test_ids_of_another_team_in_request_bodies_find_nothing(world):
    before = team_snapshot(world.beta.team)
    alpha_jobs = GenerationJob.objects.filter(team=world.alpha.team).count()
    api = client_for(world.olive)
    web = Client()
    web.force_login(world.olive)
    alpha = str(world.alpha.project.pk)
    for kind, path, body, foreign_id in BODY_IDS:
        path = path.replace("{alpha}", alpha)
        answers = []
        for object_id in (str(foreign_id(world)), str(MISSING_INT)):
            data = filled(body, {"{id}": object_id, "{alpha}": alpha})
            if kind == "api":
                answer = api.post(path, data, format="json")
            else:
                answer = web.post(path, data)
            what = f"POST {path} naming {object_id}"
            assert_shows_nothing(answer, what)
            assert answer.status_code in (200, 302, 400, 404), (what, answer.status_code)
            text = content(answer).decode().replace(object_id, "{id}")
            answers.append((answer.status_code, answer.get("Location", ""), text))
        if kind == "api":
            assert answers[0] == answers[1], (path, answers)
        else:  # pages carry a fresh CSRF token and form ids: compare what they answer
            assert answers[0][:2] == answers[1][:2], (path, answers[0][:2], answers[1][:2])
    assert team_snapshot(world.beta.team) == before
    assert GenerationJob.objects.filter(team=world.alpha.team).count() == alpha_jobs
    assert not Project.objects.filter(name="Hijack").exists()
