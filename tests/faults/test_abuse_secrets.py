"""Secrets stay secret: the provider keys, the kie.ai callback key, webhook signing secrets, API
tokens and each job's callback token appear in no log line, API answer, admin or portal page,
or error page, across the whole life of clips on both providers (in this process, and through
a real worker). The one exception is documented: the answer that creates a webhook or a token
shows its secret once.

The secrets are values no test uses elsewhere, and a simulator of their own accepts them, so a
plain substring search means something. Log records are checked as the project's console
handler writes them (its filter redacts; see `config.logs`).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.test import Client
from django.urls import reverse
from PIL import Image
from rest_framework.authtoken.models import Token

from config.logs import RequestIdFilter
from tests.api.conftest import client_for
from tests.faults.running import FAST_WORKER
from tests.fixtures.data import make_job, make_member
from tests.fixtures.platform import Platform, point_settings_at
from tests.fixtures.simulator import SimulatorHandle
from tests.fixtures.waiting import eventually
from videos import services
from videos.clip_links import SALT
from videos.models import GenerationJob, ProviderAccount, Role, WebhookEndpoint
from videos.simulator import KieSimulator, RenderSettings, SimulatorConfig

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

KIE_API_KEY = "kie-key-Zq7Xw3Lp9Rt2Vb8N"
KIE_HMAC_KEY = "kie-hmac-Mr6Ow8Ei0Ly2Sn4K"
KLING_ACCESS_KEY = "kling-ak-Hn4Jm6Ks8Pd0Qf2W"
KLING_SECRET_KEY = "kling-sk-Yc5Tv7Bx9Ge1Ua3Z"
METRICS_TOKEN = "metrics-tok-Fa8Dk2Lr4Wq6Zc0V"
PROVIDER_SECRETS = [KIE_API_KEY, KIE_HMAC_KEY, KLING_ACCESS_KEY, KLING_SECRET_KEY, METRICS_TOKEN]
# The console handler's format (config.logs.logging_config, "plain").
LINE = logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")


@pytest.fixture(scope="module")
def secret_simulator() -> Iterator[KieSimulator]:
    simulator = KieSimulator(
        SimulatorConfig(
            port=0,
            api_key=KIE_API_KEY,
            hmac_key=KIE_HMAC_KEY,
            kling_access_key=KLING_ACCESS_KEY,
            kling_secret_key=KLING_SECRET_KEY,
            task_seconds=0.3,
            render=RenderSettings(long_side=160, fps=12),
            allow_control=True,
            callback_timeout=5.0,
        )
    ).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def platform(secret_simulator: KieSimulator, live_server: Any, settings: Any) -> Platform:
    """The platform fixture, on a simulator that takes this module's keys (the worker fixtures
    read their settings from it)."""
    handle = SimulatorHandle(secret_simulator)
    handle.reset()
    point_settings_at(settings, handle, live_server.url)
    settings.METRICS_TOKEN = METRICS_TOKEN
    return Platform(simulator=handle, url=live_server.url)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (40, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def log_lines(records: list[logging.LogRecord]) -> list[str]:
    """The records as the project's console handler writes them, tracebacks included."""
    lines = []
    for record in records:
        RequestIdFilter().filter(record)
        lines.append(LINE.format(record))
    return lines


def leaks(texts: dict[str, str], secrets: list[str]) -> list[str]:
    return [
        f"{where} shows {secret!r}"
        for where, text in texts.items()
        for secret in secrets
        if secret and secret in text
    ]


class Life:
    """Alice's clips on both providers, through the API as a script would, with a webhook and
    a named token; keeps every secret it is shown."""

    def __init__(self, platform: Platform, receiver: Any, team: Any) -> None:
        self.platform = platform
        self.alice = make_member("alice", team, Role.OWNER)
        self.kie = services.project_create(
            team=team, name="On kie", monthly_budget_usd=Decimal("50")
        )
        self.kling = services.project_create(
            team=team, name="On Kling", provider="kling", monthly_budget_usd=Decimal("50")
        )
        session = client_for(self.alice)
        self.legacy_key = Token.objects.get(user=self.alice).key
        made = session.post("/api/v1/tokens/", {"name": "script"}, format="json")
        assert made.status_code == 201, made.content
        self.token_key = made.json()["key"]
        self.api = Client(HTTP_AUTHORIZATION=f"Bearer {self.token_key}")
        self.webhook_secrets: list[str] = []
        for project in (self.kie, self.kling):
            hook = self.api.post(
                "/api/v1/webhooks/",
                {"project": project.pk, "url": receiver.url, "events": ["job.succeeded"]},
                content_type="application/json",
            )
            assert hook.status_code == 201, hook.content
            self.webhook_secrets.append(hook.json()["secret"])
        self.jobs: list[GenerationJob] = []

    def make_clips(self) -> None:
        image = self.api.post(
            "/api/v1/jobs/",
            {
                "project": self.kie.pk,
                "kind": "image_to_video",
                "prompt": "The still comes alive",
                "duration": 5,
                "image": io.BytesIO(png()),
            },
        )
        text = self.api.post(
            "/api/v1/jobs/",
            {
                "project": self.kling.pk,
                "kind": "text_to_video",
                "prompt": "Lanterns over a lake",
                "duration": 5,
                "aspect_ratio": "16:9",
            },
            content_type="application/json",
        )
        assert image.status_code == text.status_code == 201, (image.content, text.content)
        self.jobs = [GenerationJob.objects.get(pk=a.json()["id"]) for a in (image, text)]

    def wait(self, receiver: Any, timeout: float = 30) -> None:
        for job in self.jobs:
            self.platform.wait_for(job, timeout=timeout)
        eventually(lambda: len(receiver.requests) >= 2, timeout=timeout)

    def secrets(self) -> list[str]:
        rotated = list(WebhookEndpoint.objects.values_list("secret", flat=True))
        return [
            *PROVIDER_SECRETS,
            *self.webhook_secrets,
            *rotated,
            self.token_key,
            self.legacy_key,
            *(job.callback_token for job in self.jobs),
        ]


def pages(life: Life, root: Any) -> dict[str, str]:
    """Every answer a person or a script reads after the clips are made."""
    texts: dict[str, str] = {}
    jobs = life.jobs
    hooks = list(WebhookEndpoint.objects.order_by("pk"))
    api_paths = [
        "/api/v1/jobs/",
        *(f"/api/v1/jobs/{job.pk}/" for job in jobs),
        *(f"/api/v1/jobs/{job.pk}/video-url/" for job in jobs),
        "/api/v1/webhooks/",
        *(f"/api/v1/webhooks/{hook.pk}/" for hook in hooks),
        *(f"/api/v1/webhooks/{hook.pk}/deliveries/" for hook in hooks),
        "/api/v1/tokens/",
        "/api/v1/projects/",
        f"/api/v1/projects/{life.kie.pk}/",
        "/api/v1/teams/",
        f"/api/v1/spend/?project={life.kie.pk}",
        "/api/schema/",
    ]
    for path in api_paths:
        answer = life.api.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        texts[f"API {path}"] = answer.content.decode()
    # A webhook test event and a resend are answers too (no secret in them).
    for path in (f"/api/v1/webhooks/{hooks[0].pk}/test/",):
        answer = life.api.post(path, content_type="application/json")
        assert answer.status_code == 202, (path, answer.status_code)
        texts[f"API POST {path}"] = answer.content.decode()

    portal = Client()
    portal.force_login(life.alice)
    portal_paths = [
        reverse("portal:home"),
        reverse("portal:project", args=[life.kie.pk]),
        reverse("portal:project-jobs", args=[life.kie.pk]),
        reverse("portal:webhooks", args=[life.kie.pk]),
        reverse("portal:tokens"),
        reverse("portal:team"),
        reverse("portal:spend"),
        *(reverse("portal:job", args=[job.pk]) for job in jobs),
    ]
    for path in portal_paths:
        page = portal.get(path)
        assert page.status_code == 200, (path, page.status_code)
        texts[f"portal {path}"] = page.content.decode()

    admin = Client()
    admin.force_login(root)
    admin_paths = [
        reverse("admin:index"),
        reverse("admin:videos_provideraccount_changelist"),
        *(
            reverse("admin:videos_provideraccount_change", args=[account.pk])
            for account in ProviderAccount.objects.all()
        ),
        reverse("admin:videos_webhookendpoint_changelist"),
        *(reverse("admin:videos_webhookendpoint_change", args=[hook.pk]) for hook in hooks),
        reverse("admin:videos_webhookdelivery_changelist"),
        reverse("admin:authtoken_tokenproxy_changelist"),
        reverse("admin:authtoken_tokenproxy_change", args=[life.alice.pk]),
        reverse("admin:videos_generationjob_changelist"),
        *(reverse("admin:videos_generationjob_change", args=[job.pk]) for job in jobs),
        *(reverse("admin:videos_generationjob_history", args=[job.pk]) for job in jobs),
        reverse("admin:videos_jobevent_changelist"),
        reverse("admin:auth_user_change", args=[life.alice.pk]),
        reverse("admin:django_q_success_changelist"),
        reverse("admin:django_q_failure_changelist"),
    ]
    admin_paths += [reverse("operations-status"), reverse("health")]
    metrics = Client().get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert metrics.status_code == 200
    texts["metrics"] = metrics.content.decode()
    assert ProviderAccount.objects.count() >= 2  # both providers' accounts are shown
    for path in admin_paths:
        page = admin.get(path)
        assert page.status_code == 200, (path, page.status_code)
        texts[f"admin {path}"] = page.content.decode()
    return texts


def error_pages(life: Life, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """404s, 405s and 500s with DEBUG off. (A path a client sends is echoed to it, so secrets
    of the server's are what to look for, under a job's callback URL among others.)"""
    texts: dict[str, str] = {}
    job = life.jobs[0]
    callback = job.callback_path
    web = Client(raise_request_exception=False)
    web.force_login(life.alice)
    for method, path in [
        ("get", callback),  # 405, logged by Django with the path
        ("post", callback.rstrip("/") + "x/"),  # a wrong token: 404
        ("get", f"/api/v1/jobs/{job.pk}/nothing-here/"),
        ("get", reverse("portal:job", args=[job.pk]) + "nothing-here/"),
    ]:
        answer = getattr(web, method)(path)
        assert answer.status_code in (404, 405), (path, answer.status_code)
        texts[f"{answer.status_code} {path}"] = answer.content.decode()

    from videos import selectors

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database caught fire")

    monkeypatch.setattr(selectors, "project_list", broken)
    life.api.raise_request_exception = False
    for path in ["/api/v1/projects/", reverse("portal:home")]:
        answer = life.api.get(path) if path.startswith("/api/") else web.get(path)
        assert answer.status_code == 500, (path, answer.status_code)
        texts[f"500 {path}"] = answer.content.decode()
    return texts


def test_no_secret_in_logs_answers_pages_or_errors(
    platform, receiver, team, caplog, monkeypatch, settings, transactional_db
):
    assert settings.DEBUG is False
    caplog.set_level(logging.DEBUG)
    root = get_user_model().objects.create_superuser("root", password="root-pw-1")
    life = Life(platform, receiver, team)
    life.make_clips()
    life.wait(receiver)
    ContentType.objects.clear_cache()

    texts = {**pages(life, root), **error_pages(life, monkeypatch)}
    secrets = life.secrets()
    assert not leaks(texts, secrets), leaks(texts, secrets)
    lines = log_lines(caplog.records)
    for step in ("upload", "createTask", "text2video", "deliver_webhook", "Method Not Allowed"):
        assert any(step in line for line in lines), f"the capture missed {step}"
    found = leaks({f"log line {n}: {line[:300]}": line for n, line in enumerate(lines)}, secrets)
    assert not found, found


def test_no_secret_in_a_real_workers_log(
    platform, receiver, team, caplog, start_worker, transactional_db
):
    caplog.set_level(logging.DEBUG)
    worker = start_worker(
        **FAST_WORKER,
        LOG_LEVEL="DEBUG",
        KLING_ACCESS_KEY=KLING_ACCESS_KEY,
        KLING_SECRET_KEY=KLING_SECRET_KEY,
        KLING_BASE_URL=platform.simulator.base_url,
    )
    life = Life(platform, receiver, team)
    life.make_clips()
    life.wait(receiver, timeout=60)
    secrets = life.secrets()
    worker_log = worker.log.read_text(errors="replace")
    for step in ("kie.ai upload", "kie.ai createTask", "submit_job", "deliver_webhook"):
        assert step in worker_log, f"the worker's log misses {step}: {worker_log[-2000:]}"
    found = leaks(
        {f"worker log line {n}": line for n, line in enumerate(worker_log.splitlines())},
        secrets,
    )
    found += leaks(
        {f"log line {n}": line for n, line in enumerate(log_lines(caplog.records))}, secrets
    )
    assert not found, found


def test_gunicorns_access_line_for_a_callback_or_a_clip_link_is_redacted(project):
    """gunicorn writes its access lines through the same handler (config/gunicorn.py): its
    record is the format with a dict of atoms, the request line among them."""
    from config import gunicorn

    job = make_job(project)
    signed = signing.TimestampSigner(salt=SALT).sign_object({"job": str(job.pk)})
    cases = [
        (job.callback_path, job.callback_token),
        (f"{job.callback_path}?x=1", job.callback_token),
        (f"/clips/{signed}/", signed),
    ]
    for path, secret in cases:
        record = logging.LogRecord(
            "gunicorn.access", logging.INFO, __file__, 0, gunicorn.access_log_format, None, None
        )
        record.args = {
            "h": "203.0.113.9",
            "r": f"POST {path} HTTP/1.1",
            "s": "200",
            "b": "27",
            "M": "12",
            "{x-request-id}o": "abc123",
        }
        [line] = log_lines([record])
        assert secret not in line and "/[redacted]" in line, line
