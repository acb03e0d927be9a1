"""How fast the kie.ai simulator renders clips and answers createTask.

    .venv/bin/python bench/simulator_bench.py [--calls 400] [--repeat 5]

Loopback only: the simulator runs in this process on a free 127.0.0.1 port.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from videos.simulator import KieSimulator, RenderSettings, SimulatorConfig
from videos.simulator.rendering import render_image_to_video, render_text_to_video

PROMPT = "A lighthouse on a cliff at dusk, waves crashing below, gulls circling the lamp"
API_KEY = "bench-key"


def machine() -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({platform.machine()}), {model}, Python {platform.python_version()}"
    )


def timed(function: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, best) seconds over `repeat` runs, after one warm-up run."""
    function()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), min(runs)


def bench_renders(settings: RenderSettings, repeat: int) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 720), (30, 90, 160)).save(buffer, "JPEG")
    image = buffer.getvalue()
    print(
        f"Rendering ({settings.long_side} px long side, {settings.fps} fps, median / best of {repeat}):"
    )
    for duration in (5, 10):
        for sound in (False, True):
            median, best = timed(
                functools.partial(
                    render_text_to_video,
                    PROMPT,
                    duration=duration,
                    aspect_ratio="16:9",
                    sound=sound,
                    settings=settings,
                ),
                repeat,
            )
            label = f"text to video  {duration:>2} s {'sound ' if sound else 'silent'}"
            print(f"  {label}: {median:.3f} s / {best:.3f} s")
    for duration in (5, 10):
        median, best = timed(
            functools.partial(
                render_image_to_video,
                image,
                duration=duration,
                sound=False,
                settings=settings,
                motion_seed="zoom",
            ),
            repeat,
        )
        print(f"  image to video {duration:>2} s silent: {median:.3f} s / {best:.3f} s")


def bench_create_task(
    calls: int, threads: int, *, render: bool, budget_seconds: float = 30.0
) -> None:
    config = SimulatorConfig(
        port=0, api_key=API_KEY, task_seconds=3600, credits=10**9, allow_control=True
    )
    with KieSimulator(config) as simulator:
        if not render:
            simulator.set_faults(generation_failure=1.0)  # doomed tasks skip rendering
        body = {
            "model": "kling-2.6/text-to-video",
            "input": {"prompt": PROMPT, "sound": False, "aspect_ratio": "16:9", "duration": "5"},
        }
        url = simulator.base_url + "/api/v1/jobs/createTask"
        local = threading.local()
        deadline = time.monotonic() + budget_seconds

        def one(_: int) -> bool:
            if time.monotonic() > deadline:
                return False
            if not hasattr(local, "session"):
                local.session = requests.Session()
                local.session.headers["Authorization"] = f"Bearer {API_KEY}"
            answer = local.session.post(url, json=body, timeout=10).json()
            return answer["code"] == 200

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(one, range(calls)))
        elapsed = time.perf_counter() - started
        answered = sum(results)
        mode = "each task rendering in the background" if render else "no rendering"
        print(
            f"  {threads} client thread{'s' if threads > 1 else ' '}, {mode}: "
            f"{answered} calls in {elapsed:.2f} s = {answered / elapsed:.0f} calls/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="createTask calls per run (bounded)")
    parser.add_argument("--repeat", type=int, default=5, help="renders per measurement")
    parser.add_argument("--render-size", type=int, default=320)
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    bench_renders(RenderSettings(long_side=args.render_size), args.repeat)
    print(f"createTask over HTTP keep-alive on 127.0.0.1 ({args.calls} calls per run):")
    for threads in (1, 4):
        bench_create_task(args.calls, threads, render=False)
    bench_create_task(args.calls, 4, render=True)


if __name__ == "__main__":
    main()
