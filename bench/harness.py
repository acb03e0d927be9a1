"""The platform as it runs in production, started for a benchmark: a fresh database (SQLite with
the ORM broker, or PostgreSQL with Redis), the kie.ai simulator, gunicorn and a qcluster, each
its own process. CPU time and SQL statements are read per process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SIM_KEY = "bench-simulator-key"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/perfbench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time of the process tree under `pid`: the living processes', and what the ones that
    ended and were waited for left in their parents' counts."""
    total = 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


@dataclass
class Platform:
    database: str  # "sqlite" or "postgres"
    env: dict[str, str]
    web_url: str
    sim_url: str
    folder: Path
    token: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True
        ).stdout.decode()

    def start(self, name: str, *command: str) -> None:
        log = (self.folder / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def cpu(self, *names: str) -> float:
        return sum(cpu_seconds(self.processes[name].pid) for name in names)

    def statements(self) -> tuple[int, int]:
        """SQL statements sent so far by every platform process: (all, django-q2's own)."""
        total = broker = 0
        for path in Path(self.env["BENCH_QUERY_DIR"]).iterdir():
            parts = path.read_text().split()
            if len(parts) == 2:
                total, broker = total + int(parts[0]), broker + int(parts[1])
        return total, broker

    def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(method, self.sim_url + path, timeout=30, **kwargs)
        answer.raise_for_status()
        return answer.json()["data"]

    def shell(self, code: str) -> Any:
        """Run `code` (which sets `result`) in a Django shell of the platform; returns result."""
        out = self.manage(
            "shell", "-v0", "-c", code + "\nprint('@@' + __import__('json').dumps(result))"
        )
        return json.loads(out.rsplit("@@", 1)[1])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _fresh_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def platform(
    database: str,
    *,
    workers: int = 2,
    web_workers: int = 2,
    start_worker: bool = True,
    simulator_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Platform]:
    """A running platform with a fresh database, a user and a project; stopped on exit."""
    folder = Path(tempfile.mkdtemp(prefix=f"reelforge-bench-{database}-"))
    (folder / "queries").mkdir()
    web_port, sim_port = free_port(), free_port()
    settings_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_QUERY_DIR": str(folder / "queries"),
        "SECRET_KEY": "benchmark-only-not-a-secret",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",  # plain HTTP on 127.0.0.1, no proxy in front
        "LOG_LEVEL": "WARNING",
        "KIE_USE_SIMULATOR": "true",
        "KIE_API_KEY": SIM_KEY,
        "KIE_SIMULATOR_PORT": str(sim_port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "MEDIA_ROOT": str(folder / "media"),
        "Q_WORKERS": str(workers),
        **(env or {}),
    }
    if database == "postgres":
        _fresh_postgres(PG_URL)
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        settings_env |= {"DATABASE_URL": PG_URL, "REDIS_URL": REDIS_URL}
    else:
        settings_env["DATABASE_URL"] = f"sqlite:///{folder / 'db.sqlite3'}"
        settings_env.pop("REDIS_URL", None)
    run = Platform(
        database=database,
        env=settings_env,
        web_url=f"http://127.0.0.1:{web_port}",
        sim_url=f"http://127.0.0.1:{sim_port}",
        folder=folder,
    )
    try:
        run.manage("migrate", "--no-input")
        run.manage("createcachetable")
        run.token = run.shell(SEED)
        run.start(
            "simulator",
            PYTHON,
            "manage.py",
            "kie_simulator",
            "--port",
            str(sim_port),
            "--instant-render",
            "--task-seconds",
            "0",
            "--credits",
            "1000000000",
            "--allow-control",
            *simulator_args,
        )
        run.start(
            "web",
            PYTHON,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--workers",
            str(web_workers),
            "--threads",
            "4",
            "--log-level",
            "warning",
        )
        if start_worker:
            run.start("worker", PYTHON, "manage.py", "qcluster")
        _wait_until_up(run)
        yield run
        shutil.rmtree(folder, ignore_errors=True)  # kept, with its logs, when the run failed
    finally:
        run.stop()
        if database == "postgres":
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()  # no task of this run is left behind


SEED = """
from django.contrib.auth import get_user_model
from videos.models import Membership, Project, Team
from videos.services import api_token_create
user = get_user_model().objects.create_user("bench", password="bench-pw-1")
team = Team.objects.create(name="Bench", slug="bench")
Membership.objects.create(user=user, team=team, role="owner")
Project.objects.create(team=team, name="Bench")
result = api_token_create(user=user, name="bench")[1]
"""


def _wait_until_up(run: Platform, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(
                run.web_url + "/api/v1/teams/", headers=run.auth, timeout=2
            ).raise_for_status()
            requests.get(run.sim_url + "/_control/stats", timeout=2).raise_for_status()
            time.sleep(2)  # qcluster's workers spawn
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError(f"the platform did not start; logs in {run.folder}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return f"{os.cpu_count()} CPUs, {cpu}, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
