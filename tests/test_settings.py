"""The environment switches: each is checked in a fresh process, against the real thing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
SWITCHES = ("DATABASE_URL", "REDIS_URL", "AWS_STORAGE_BUCKET_NAME", "DEBUG", "SECRET_KEY",
            "ALLOWED_HOSTS", "KIE_API_KEY", "KIE_BASE_URL", "KIE_UPLOAD_BASE_URL")


def run_with_settings(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` after django.setup() with config.settings and exactly the given switches."""
    clean = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    script = "import django, json\ndjango.setup()\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=clean, capture_output=True, text=True,
        timeout=60,
    )


def probe(code: str, **env: str) -> dict:
    result = run_with_settings(code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


PRODUCTION = {"SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "reelforge.example"}


def test_production_refuses_to_start_without_a_secret_key():
    result = run_with_settings("print('started')", ALLOWED_HOSTS="reelforge.example")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = run_with_settings("print('started')", SECRET_KEY="s" * 50)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set" in result.stderr


def test_debug_is_off_unless_asked_for():
    found = probe(
        "from django.conf import settings\n"
        "print(json.dumps({'debug': settings.DEBUG, 'secure': settings.SESSION_COOKIE_SECURE}))",
        **PRODUCTION,
    )
    assert found == {"debug": False, "secure": True}


def test_development_runs_with_no_configuration_at_all(tmp_path):
    found = probe(
        """
        from django.conf import settings
        print(json.dumps({'debug': settings.DEBUG, 'hosts': settings.ALLOWED_HOSTS,
                          'kie': settings.KIE_BASE_URL, 'simulator': settings.KIE_USE_SIMULATOR}))
        """,
        DEBUG="true",
    )
    assert found["debug"] is True
    assert "127.0.0.1" in found["hosts"]
    assert found["simulator"] is True
    assert found["kie"] == "http://127.0.0.1:8765"


def test_a_provider_key_points_at_kie_ai():
    found = probe(
        "from django.conf import settings\n"
        "print(json.dumps([settings.KIE_BASE_URL, settings.KIE_UPLOAD_BASE_URL]))",
        KIE_API_KEY="k" * 32,
        **PRODUCTION,
    )
    assert found == ["https://api.kie.ai", "https://kieai.redpandaai.co"]


def test_default_database_is_sqlite_in_wal_mode_with_a_busy_timeout(tmp_path):
    found = probe(
        """
        from django.db import connection
        with connection.cursor() as c:
            c.execute('PRAGMA journal_mode')
            mode = c.fetchone()[0]
            c.execute('PRAGMA busy_timeout')
            timeout = c.fetchone()[0]
        print(json.dumps({'vendor': connection.vendor, 'mode': mode, 'timeout': timeout}))
        """,
        DATABASE_URL=f"sqlite:///{tmp_path / 'probe.sqlite3'}",
        **PRODUCTION,
    )
    assert found == {"vendor": "sqlite", "mode": "wal", "timeout": 20000}


def test_database_url_switches_to_postgresql():
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    if not url.startswith("postgres"):
        pytest.skip("DATABASE_URL names another database")
    found = probe(
        """
        from django.db import connection
        with connection.cursor() as c:
            c.execute('SELECT version()')
            version = c.fetchone()[0]
        print(json.dumps({'vendor': connection.vendor, 'version': version}))
        """,
        DATABASE_URL=url,
        **PRODUCTION,
    )
    assert found["vendor"] == "postgresql"
    assert found["version"].startswith("PostgreSQL")


BROKER_ROUND_TRIP = """
from django_q.brokers import get_broker
broker = get_broker()
broker.purge_queue()
broker.enqueue('payload-123')
task = broker.dequeue()
print(json.dumps({'broker': type(broker).__name__, 'got': task[0][1] if task else None}, default=bytes.decode))
"""


def test_default_broker_is_the_orm(tmp_path):
    db = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "django_q", "-v0"], cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db, "DEBUG": "true"}, capture_output=True, text=True,
    )
    assert migrate.returncode == 0, migrate.stderr
    found = probe(BROKER_ROUND_TRIP, DATABASE_URL=db, **PRODUCTION)
    assert found == {"broker": "ORM", "got": "payload-123"}


def test_redis_url_switches_the_broker_and_cache_to_redis():
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis server at {url}")
    found = probe(
        BROKER_ROUND_TRIP.replace(
            "print(", "from django.core.cache import cache\ncache.set('probe', 7)\nprint("
        ).replace("'got':", "'cache': cache.get('probe'), 'got':"),
        REDIS_URL=url,
        **PRODUCTION,
    )
    assert found == {"broker": "Redis", "cache": 7, "got": "payload-123"}


def test_default_storage_is_local_disk(tmp_path):
    found = probe(
        """
        from django.core.files.base import ContentFile
        from django.core.files.storage import default_storage
        name = default_storage.save('probe/hello.txt', ContentFile(b'hello'))
        print(json.dumps({'backend': type(default_storage._wrapped).__name__,
                          'path': default_storage.path(name)}))
        """,
        MEDIA_ROOT=str(tmp_path),
        **PRODUCTION,
    )
    assert found["backend"] == "FileSystemStorage"
    assert Path(found["path"]).read_bytes() == b"hello"


def test_bucket_name_switches_storage_to_s3(s3_server):
    bucket = s3_server.new_bucket()
    found = probe(
        """
        from django.core.files.base import ContentFile
        from django.core.files.storage import default_storage
        name = default_storage.save('probe/hello.txt', ContentFile(b'hello s3'))
        print(json.dumps({'backend': type(default_storage._wrapped).__name__, 'name': name,
                          'url': default_storage.url(name)}))
        """,
        **s3_server.env(bucket),
        **PRODUCTION,
    )
    assert found["backend"] == "S3Storage"
    body = s3_server.client().get_object(Bucket=bucket, Key=found["name"])["Body"].read()
    assert body == b"hello s3"
    assert "Signature=" in found["url"] or "X-Amz-Signature=" in found["url"]
