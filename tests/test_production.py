"""Production as it runs: gunicorn with production settings (DEBUG off) behind a TLS proxy,
WhiteNoise serving the collected static files, stored files only through the checked views,
and `check --deploy` clean under the settings docs/deployment.md gives."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.test import Client

from tests.api.conftest import CLIP_BYTES, make_succeeded_job
from tests.config.test_settings import probe, run_with_settings
from tests.fixtures.data import make_member
from tests.fixtures.processes import MANAGE, Web, production_env
from videos.models import Role

pytestmark = pytest.mark.e2e
# What the proxy in front says about the client's connection (docs/deployment.md's nginx).
HTTPS = {"X-Forwarded-Proto": "https"}

# The production settings docs/deployment.md documents, less the secrets' real values.
DEPLOYMENT_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "reelforge.example",
    "CSRF_TRUSTED_ORIGINS": "https://reelforge.example",
    "KIE_API_KEY": "k" * 32,
    "TRUSTED_PROXY_COUNT": "1",
    "PUBLIC_BASE_URL": "https://reelforge.example",
}


def test_check_deploy_is_clean_under_the_documented_production_settings():
    result = run_with_settings(
        "from django.core.management import call_command\n"
        "call_command('check', deploy=True, fail_level='WARNING')",
        **DEPLOYMENT_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout + result.stderr


SECURITY = """
from django.conf import settings
print(json.dumps({
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
    "num_proxies": settings.REST_FRAMEWORK["NUM_PROXIES"],
    "redirect": settings.SECURE_SSL_REDIRECT,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "static": settings.STORAGES["staticfiles"]["BACKEND"].rsplit(".", 1)[-1],
}))
"""


def test_the_forwarded_headers_are_believed_only_behind_a_trusted_proxy():
    direct = {k: v for k, v in DEPLOYMENT_ENV.items() if k != "TRUSTED_PROXY_COUNT"}
    assert probe(SECURITY, **direct)["proxy_header"] is None
    assert probe(SECURITY, **direct)["num_proxies"] == 0
    behind = probe(SECURITY, **DEPLOYMENT_ENV)
    assert behind["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert behind["num_proxies"] == 1
    assert probe(SECURITY, **direct, API_NUM_PROXIES="2")["num_proxies"] == 2  # the older name


def test_production_defaults_are_https_only_and_development_stays_easy():
    production = probe(SECURITY, **DEPLOYMENT_ENV)
    development = probe(SECURITY, DEBUG="true")
    assert production["redirect"] is True and production["hsts"] == 31536000
    assert production["static"] == "CompressedManifestStaticFilesStorage"
    assert development["redirect"] is False and development["hsts"] == 0
    assert development["static"] == "StaticFilesStorage"


def test_an_unknown_log_format_is_refused():
    result = run_with_settings("print('started')", **DEPLOYMENT_ENV, LOG_FORMAT="xml")
    assert result.returncode != 0 and "LOG_FORMAT must be plain or json" in result.stderr


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`collectstatic` with production settings: hashed, compressed copies."""
    root = tmp_path_factory.mktemp("static")
    env = production_env(STATIC_ROOT=str(root), **DEPLOYMENT_ENV)
    env.pop("DATABASE_URL")  # collecting needs no database
    done = subprocess.run(
        [sys.executable, MANAGE, "collectstatic", "--no-input", "-v0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def web(
    transactional_db: None, static_root: Path, media_root: Path, tmp_path: Path
) -> Iterator[Web]:
    server = Web(
        env=production_env(
            **{
                **DEPLOYMENT_ENV,
                # The test's own key, so the sessions this process makes are valid there.
                "SECRET_KEY": settings.SECRET_KEY,
                "ALLOWED_HOSTS": "127.0.0.1",
                "KIE_USE_SIMULATOR": "true",
                "STATIC_ROOT": str(static_root),
                "MEDIA_ROOT": str(media_root),
                # No connection outlives its request, so none is left when the test database
                # is dropped.
                "DATABASE_CONN_MAX_AGE": "0",
            }
        ),
        cwd=tmp_path / "web",
        log=tmp_path / "web.log",
    )
    yield server
    server.stop()


def session_cookie(user: Any) -> dict[str, str]:
    # The cookie is marked Secure; behind the proxy the browser's HTTPS carries it, so here it
    # is sent by hand over the test's plain HTTP.
    client = Client()
    client.force_login(user)
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}


def test_gunicorn_serves_static_files_the_api_docs_and_clips_to_members_only(
    web, project, other_team
):
    editor = make_member("erin", project.team, Role.EDITOR)
    stranger = make_member("sam", other_team, Role.OWNER)
    job = make_succeeded_job(project)
    http = requests.Session()

    # The admin's CSS: hashed names from the manifest, compressed, cached for good.
    login = http.get(f"{web.url}/admin/login/", headers=HTTPS, timeout=10)
    assert login.status_code == 200
    css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login.text)
    assert css, login.text[:2000]
    stylesheet = http.get(
        web.url + css.group(1), headers={**HTTPS, "Accept-Encoding": "gzip"}, timeout=10
    )
    assert stylesheet.status_code == 200
    assert stylesheet.headers["Content-Type"].startswith("text/css")
    assert stylesheet.headers["Content-Encoding"] == "gzip"
    assert "immutable" in stylesheet.headers["Cache-Control"]

    # Swagger UI and its assets (drf-spectacular's sidecar copies).
    docs = http.get(f"{web.url}/api/docs/", headers={**HTTPS, **session_cookie(editor)}, timeout=10)
    assert docs.status_code == 200
    bundle = re.search(r'src="(/static/drf_spectacular_sidecar/[^"]+\.js)"', docs.text)
    assert bundle, docs.text[:2000]
    assert http.get(web.url + bundle.group(1), headers=HTTPS, timeout=10).status_code == 200

    # A clip through the checked view, by ranges as a player asks for it.
    clip = f"{web.url}/files/jobs/{job.pk}/clip/"
    part = http.get(
        clip, headers={**HTTPS, **session_cookie(editor), "Range": "bytes=100-199"}, timeout=10
    )
    assert part.status_code == 206
    assert part.content == CLIP_BYTES[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(CLIP_BYTES)}"
    assert part.headers["X-Request-ID"]

    # Strangers and anonymous visitors: nothing, not even whether the clip exists.
    assert (
        http.get(clip, headers={**HTTPS, **session_cookie(stranger)}, timeout=10).status_code == 404
    )
    assert http.get(clip, headers=HTTPS, timeout=10).status_code == 404
    assert (
        http.get(f"{web.url}/media/{job.asset.file.name}", headers=HTTPS, timeout=10).status_code
        == 404
    )


def test_gunicorn_sends_plain_http_to_https_but_answers_health_checks(web):
    redirected = requests.get(f"{web.url}/admin/", allow_redirects=False, timeout=10)
    assert redirected.status_code == 301
    assert redirected.headers["Location"].startswith("https://")
    health = requests.get(f"{web.url}/healthz/", timeout=10)
    assert health.json() == {"status": "ok"}
    secure = requests.get(f"{web.url}/healthz/", headers=HTTPS, timeout=10)
    assert "max-age=31536000" in secure.headers["Strict-Transport-Security"]
