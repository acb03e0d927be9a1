"""What a user would write instead of the platform: a pool of 16 threads, each posting
createTask, polling recordInfo until the task ends, then downloading the clip to disk.

    .venv/bin/python bench/naive_bench.py --jobs 1000

Against the same simulator as the orchestration benchmark (its own process, rendering instant).
No budget, no ledger, no history, no retries: the floor the platform is compared with.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import PYTHON, ROOT, SIM_KEY, free_port, machine

HEADERS = {"Authorization": f"Bearer {SIM_KEY}"}
BODY: dict[str, Any] = {
    "model": "kling-2.6/text-to-video",
    "input": {
        "prompt": "A lighthouse at dusk",
        "sound": False,
        "aspect_ratio": "16:9",
        "duration": "5",
    },
}
_local = threading.local()


def session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def one_job(base: str, folder: Path, n: int) -> None:
    http = session()
    task = http.post(base + "/api/v1/jobs/createTask", json=BODY, headers=HEADERS, timeout=30)
    task_id = task.json()["data"]["taskId"]
    while True:
        record = http.get(
            base + "/api/v1/jobs/recordInfo",
            params={"taskId": task_id},
            headers=HEADERS,
            timeout=30,
        ).json()["data"]
        if record["state"] in ("success", "fail"):
            break
        time.sleep(0.1)
    url = __import__("json").loads(record["resultJson"])["resultUrls"][0]
    with http.get(url, stream=True, timeout=30) as answer, (folder / f"{n}.mp4").open("wb") as out:
        for chunk in answer.iter_content(1024 * 1024):
            out.write(chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=16)
    options = parser.parse_args()
    port = free_port()
    env = {**os.environ, "DEBUG": "true", "KIE_USE_SIMULATOR": "true", "KIE_API_KEY": SIM_KEY}
    simulator = subprocess.Popen(
        [
            PYTHON,
            "manage.py",
            "kie_simulator",
            "--port",
            str(port),
            "--instant-render",
            "--task-seconds",
            "0",
            "--credits",
            "1000000000",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(base + "/api/v1/chat/credit", headers=HEADERS, timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        with tempfile.TemporaryDirectory() as folder:
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.monotonic()
            with ThreadPoolExecutor(options.threads) as pool:
                list(pool.map(lambda n: one_job(base, Path(folder), n), range(options.jobs)))
            wall = time.monotonic() - started
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            stored = len(list(Path(folder).iterdir()))
    finally:
        simulator.terminate()
        simulator.wait(timeout=15)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    print(f"Machine: {machine()}")
    print(
        f"  naive {options.threads}-thread client, jobs {options.jobs}, stored {stored}, "
        f"wall_s {wall:.2f}, jobs_per_s {options.jobs / wall:.1f}, "
        f"cpu_ms_per_job {cpu * 1000 / options.jobs:.1f}"
    )


if __name__ == "__main__":
    main()
