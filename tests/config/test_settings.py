"""The environment switches: each is checked in a fresh process, against the real thing."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
ENV_READERS = {"env_str", "env_bool", "env_int", "env_float", "env_list"}


class _EnvReads(ast.NodeVisitor):
    """Collects the environment variables a settings module reads, by their literal names."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.unnamed: list[str] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name not in ENV_READERS:  # the helpers read whatever name they are given
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = ast.unparse(node.func)
        if func in ENV_READERS or func in {"os.environ.get", "os.getenv", "os.environ.setdefault"}:
            self._add(node.args[0] if node.args else None, node)
        elif func == "dj_database_url.config":
            env = next((kw.value for kw in node.keywords if kw.arg == "env"), None)
            if env is None:
                self.names.add("DATABASE_URL")  # dj-database-url's own default
            else:
                self._add(env, node)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if ast.unparse(node.value) == "os.environ":
            self._add(node.slice, node)
        self.generic_visit(node)

    def _add(self, arg: ast.expr | None, node: ast.expr) -> None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            self.names.add(arg.value)
        else:
            self.unnamed.append(f"line {node.lineno}: {ast.unparse(node)}")


def names_read_by_settings() -> _EnvReads:
    reads = _EnvReads()
    reads.visit(ast.parse((ROOT / "config" / "settings.py").read_text()))
    return reads


def names_in_readme_table() -> set[str]:
    """The backticked names in the first column of the README's configuration table."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    names: set[str] = set()
    for row in rows[2:]:  # after the header and its separator
        names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1]))
    return names


# Each probe sees only the variables it is given: none the settings read are inherited (the test
# settings set some in this process).
SWITCHES = frozenset(names_read_by_settings().names)


def run_with_settings(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` after django.setup() with config.settings and exactly the given switches."""
    clean = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    script = "import django, json\ndjango.setup()\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def probe(code: str, **env: str) -> dict:
    result = run_with_settings(code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


PRODUCTION = {"SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "reelforge.example", "KIE_API_KEY": "k" * 32}
NO_PROVIDER_KEY = {"SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "reelforge.example"}
SIMULATOR_URL = "http://127.0.0.1:8765"


def test_the_readme_lists_every_variable_the_settings_read():
    reads = names_read_by_settings()
    assert not reads.unnamed, (
        f"name each variable with a literal so it can be listed: {reads.unnamed}"
    )
    readme = names_in_readme_table()
    assert not reads.names - readme, (
        f"add to README.md's configuration table: {sorted(reads.names - readme)}"
    )
    assert not readme - reads.names, (
        f"README.md lists variables nothing reads: {sorted(readme - reads.names)}"
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_with_settings("print('started')", ALLOWED_HOSTS="reelforge.example")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = run_with_settings("print('started')", SECRET_KEY="s" * 50)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set" in result.stderr


def test_production_refuses_to_start_without_a_provider_key():
    result = run_with_settings("print('started')", **NO_PROVIDER_KEY)
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "KIE_API_KEY must be set" in result.stderr
    assert "KIE_USE_SIMULATOR=true" in result.stderr


def test_manage_py_check_says_what_to_set_without_a_provider_key():
    clean = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **NO_PROVIDER_KEY},
    )
    assert result.returncode != 0
    assert "KIE_API_KEY must be set" in result.stderr


PROVIDER_SETTINGS = """
from django.conf import settings
print(json.dumps({'simulator': settings.KIE_USE_SIMULATOR, 'key': settings.KIE_API_KEY,
                  'urls': [settings.KIE_BASE_URL, settings.KIE_UPLOAD_BASE_URL]}))
"""


def test_production_uses_the_simulator_only_when_told_to():
    found = probe(PROVIDER_SETTINGS, KIE_USE_SIMULATOR="true", **NO_PROVIDER_KEY)
    assert found["simulator"] is True
    assert found["urls"] == [SIMULATOR_URL, SIMULATOR_URL]
    assert found["key"]  # the simulator's own


def test_an_explicit_simulator_wins_over_a_key_which_becomes_the_simulators():
    found = probe(PROVIDER_SETTINGS, KIE_USE_SIMULATOR="true", **PRODUCTION)
    assert found == {"simulator": True, "key": "k" * 32, "urls": [SIMULATOR_URL, SIMULATOR_URL]}


def test_development_can_refuse_the_simulator_and_then_needs_a_key():
    result = run_with_settings("print('started')", DEBUG="true", KIE_USE_SIMULATOR="false")
    assert result.returncode != 0
    assert "KIE_API_KEY must be set" in result.stderr


def test_the_simulator_port_moves_the_simulator_and_the_urls_that_reach_it():
    found = probe(
        """
        from django.conf import settings
        from videos.management.commands.kie_simulator import Command
        options = vars(Command().create_parser('manage.py', 'kie_simulator').parse_args([]))
        print(json.dumps({'url': settings.KIE_BASE_URL, 'port': options['port']}))
        """,
        DEBUG="true",
        KIE_SIMULATOR_PORT="9876",
    )
    assert found == {"url": "http://127.0.0.1:9876", "port": 9876}


def test_the_provider_client_takes_its_timeouts_from_the_environment():
    found = probe(
        """
        from videos.providers.kie import KieProvider
        p = KieProvider.from_settings()
        print(json.dumps([p.connect_timeout, p.read_timeout, p.max_callback_skew, p.base_url]))
        """,
        KIE_CONNECT_TIMEOUT="2.5",
        KIE_READ_TIMEOUT="12",
        KIE_WEBHOOK_MAX_SKEW="60",
        **PRODUCTION,
    )
    assert found == [2.5, 12.0, 60.0, "https://api.kie.ai"]


def test_the_provider_timeouts_have_defaults():
    found = probe(
        """
        from django.conf import settings
        print(json.dumps([settings.KIE_CONNECT_TIMEOUT, settings.KIE_READ_TIMEOUT,
                          settings.KIE_WEBHOOK_MAX_SKEW,
                          settings.PIPELINE['RESULT_CONNECT_TIMEOUT_SECONDS'],
                          settings.PIPELINE['RESULT_READ_TIMEOUT_SECONDS']]))
        """,
        **PRODUCTION,
    )
    assert found == [5.0, 30.0, 300.0, 5.0, 30.0]


def test_a_timeout_that_is_not_a_number_is_refused():
    result = run_with_settings("print('started')", KIE_READ_TIMEOUT="30s", **PRODUCTION)
    assert result.returncode != 0
    assert "KIE_READ_TIMEOUT must be a number, not '30s'" in result.stderr


def test_an_empty_variable_counts_as_unset():
    found = probe(PROVIDER_SETTINGS, KIE_BASE_URL="", KIE_UPLOAD_BASE_URL=" ", **PRODUCTION)
    assert found["urls"] == ["https://api.kie.ai", "https://kieai.redpandaai.co"]


def test_a_result_download_gives_up_after_the_read_timeout(settings, tmp_path):
    from videos.jobs.download import ResultUnreachable, download

    settings.PIPELINE = {**settings.PIPELINE, "RESULT_READ_TIMEOUT_SECONDS": 0.3}
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(ResultUnreachable):
            download(f"http://127.0.0.1:{silent.getsockname()[1]}/clip.mp4", tmp_path / "clip.mp4")
    finally:
        for conn in accepted:
            conn.close()
        silent.close()
    assert time.monotonic() - started < 5


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
        [sys.executable, "manage.py", "migrate", "django_q", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db, "DEBUG": "true"},
        capture_output=True,
        text=True,
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


def test_the_content_security_policy_lets_media_come_from_the_s3_store_only_when_it_is_used():
    read = (
        "from django.conf import settings\n"
        "print(json.dumps({'policy': settings.CONTENT_SECURITY_POLICY}))"
    )

    def sources(directive: str, **env: str) -> list[str]:
        found = probe(read, **PRODUCTION, **env)["policy"]
        policy = dict(part.split(" ", 1) for part in found.split("; "))
        return policy[directive].split()

    assert sources("media-src") == ["'self'", "data:", "blob:"]
    endpoint = {
        "AWS_STORAGE_BUCKET_NAME": "clips",
        "AWS_S3_ENDPOINT_URL": "https://s3.example:9000",
    }
    assert sources("media-src", **endpoint)[3:] == [
        "https://s3.example:9000",
        "https://*.s3.example:9000",  # virtual-host bucket names
    ]
    assert sources("img-src", AWS_STORAGE_BUCKET_NAME="clips")[-1] == "https://*.amazonaws.com"
    assert sources("script-src", **endpoint) == ["'self'"]  # never inline code, S3 or not
    own = "default-src 'none'"
    assert probe(read, **PRODUCTION, CONTENT_SECURITY_POLICY=own)["policy"] == own
