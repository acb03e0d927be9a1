"""Jobs through the whole platform: created with POST /api/v1/jobs/batch/, submitted, called
back (or polled), retrieved into storage and settled, against the simulator with rendering made
instant, so what is measured is the platform's own cost.

    .venv/bin/python bench/orchestration_bench.py --database sqlite --jobs 100 1000
    .venv/bin/python bench/orchestration_bench.py --database postgres --jobs 1000
    .venv/bin/python bench/orchestration_bench.py --database sqlite --jobs 100 --lost-callbacks
    .venv/bin/python bench/orchestration_bench.py --database sqlite --jobs 200 --provider-limit

Each run starts its own platform (a fresh database, the simulator, gunicorn with 2 processes,
a qcluster with 2 workers). By default the provider's rate limit is lifted (platform and
simulator), to measure orchestration; --provider-limit keeps kie.ai's 20 new tasks per 10 s on
both sides. Prints one line of figures per run, and JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import machine, percentile, platform

BATCH = 100

TIMES = """
import json
from videos.models import GenerationJob, JobEvent
rows = GenerationJob.objects.values_list("pk", "provider_task_id", "finished_at", "state")
events = {}
for job_id, to_state, created in JobEvent.objects.filter(to_state="submitting").values_list(
    "job_id", "to_state", "created"
):
    events[str(job_id)] = created.timestamp()
result = [
    [str(pk), task, finished.timestamp() if finished else None, state, events.get(str(pk))]
    for pk, task, finished, state in rows
]
"""


def run(
    database: str, jobs: int, *, lost_callbacks: bool, provider_limit: bool, env: dict[str, str]
) -> dict[str, Any]:
    simulator_args: tuple[str, ...] = ()
    env = dict(env)
    if provider_limit:
        simulator_args = ("--rate-limit", "20", "--rate-window", "10")
    else:
        env |= {"KIE_RATE_LIMIT_TASKS": "100000", "KIE_MAX_IN_FLIGHT": "100000"}
    if lost_callbacks:
        simulator_args += ("--lost-callback-rate", "1")
    with platform(database, simulator_args=simulator_args, env=env) as plat:
        project = requests.get(plat.web_url + "/api/v1/projects/", headers=plat.auth, timeout=10)
        project_id = project.json()["results"][0]["id"]
        body = {"project": project_id, "kind": "text_to_video", "prompt": "A lighthouse at dusk"}
        cpu_before = plat.cpu("web", "worker")
        cpu_web_before = plat.cpu("web")
        statements_before = plat.statements()
        started = time.monotonic()
        for first in range(0, jobs, BATCH):
            batch = {"jobs": [body] * min(BATCH, jobs - first)}
            answer = requests.post(
                plat.web_url + "/api/v1/jobs/batch/", json=batch, headers=plat.auth, timeout=120
            )
            assert answer.status_code == 201, answer.text
        deadline = started + 3600
        while time.monotonic() < deadline:
            page = requests.get(
                plat.web_url + "/api/v1/jobs/",
                params={
                    "state": "queued,submitting,submitted,generating,retrieving",
                    "page_size": "1",
                },
                headers=plat.auth,
                timeout=30,
            ).json()
            if not page["results"]:
                break
            time.sleep(0.25)
        wall = time.monotonic() - started
        time.sleep(1.2)  # the counts are written at most twice a second
        cpu = plat.cpu("web", "worker") - cpu_before
        cpu_web = plat.cpu("web") - cpu_web_before
        statements = plat.statements()
        stats = plat.sim("GET", "/_control/stats")
        rows = plat.shell(TIMES)
        # When each task was done at the provider (recordInfo's completeTime), for latency.
        done = {}
        for job_id, task_id, finished, state, submitting in rows:
            record = plat.sim(
                "GET",
                "/api/v1/jobs/recordInfo",
                params={"taskId": task_id},
                headers={"Authorization": "Bearer bench-simulator-key"},
            )
            done[job_id] = (record["completeTime"] / 1000, finished, state, submitting)
    states = [value[2] for value in done.values()]
    latency = [finished - complete for complete, finished, _, _ in done.values() if finished]
    submitted = sorted(value[3] for value in done.values() if value[3])
    requests_made = stats["requests"]
    result: dict[str, Any] = {
        "database": database,
        "jobs": jobs,
        "succeeded": states.count("succeeded"),
        "wall_s": round(wall, 2),
        "jobs_per_s": round(jobs / wall, 1),
        "cpu_ms_per_job": round(cpu * 1000 / jobs, 1),
        "of_which_web_ms": round(cpu_web * 1000 / jobs, 1),
        "statements_per_job": round((statements[0] - statements_before[0]) / jobs, 1),
        "broker_statements_per_job": round((statements[1] - statements_before[1]) / jobs, 1),
        "done_to_succeeded_p50_s": round(percentile(latency, 0.5), 3),
        "done_to_succeeded_p99_s": round(percentile(latency, 0.99), 3),
        "create_task_per_job": round(requests_made.get("createTask", 0) / jobs, 2),
        "record_info_per_job": round(requests_made.get("recordInfo", 0) / jobs, 2),
        "rejected": stats["rejected"],
    }
    if provider_limit and len(submitted) > 20:
        # After the first window's burst of 20, tasks can go at 20 per 10 s at most.
        steady = (len(submitted) - 20) / (submitted[-1] - submitted[19])
        result["tasks_per_s_after_first_window"] = round(steady, 2)
        result["share_of_limit"] = round(steady / 2.0, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--jobs", type=int, nargs="+", default=[100])
    parser.add_argument("--lost-callbacks", action="store_true")
    parser.add_argument("--provider-limit", action="store_true")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a setting for the run"
    )
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    print(f"Machine: {machine()}", flush=True)
    for jobs in options.jobs:
        result = run(
            options.database,
            jobs,
            lost_callbacks=options.lost_callbacks,
            provider_limit=options.provider_limit,
            env=dict(item.split("=", 1) for item in options.env),
        )
        print(
            json.dumps(result)
            if options.json
            else "  " + ", ".join(f"{k} {v}" for k, v in result.items()),
            flush=True,
        )


if __name__ == "__main__":
    main()
