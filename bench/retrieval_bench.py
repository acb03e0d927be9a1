"""A large result streamed into storage: peak memory growth, and throughput against `curl -o`.

    .venv/bin/python bench/retrieval_bench.py --megabytes 1024

A file of random bytes is served on 127.0.0.1 by `python -m http.server` (its own process).
`curl -o` copies it first, for the reference throughput. Then, for local disk and for an
S3-compatible server (moto, its own process), a fresh process runs the two steps a retrieval
takes (`videos.jobs.download.download` streaming to a temporary file while hashing it, then
`default_storage.save`) with RESULT_MAX_BYTES raised, and reports its peak RSS growth (VmHWM
against VmRSS before) and throughput. Probing is left out: random bytes are no video.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import PYTHON, ROOT, free_port, machine


def memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def child(url: str) -> None:
    """In a fresh process: stream `url` into the configured storage; print figures as JSON."""
    import django

    django.setup()
    from django.core.files import File
    from django.core.files.storage import default_storage

    from videos.jobs.download import download

    # A worker has its storage client (for S3: boto3 and its service models, tens of MB) from
    # its first job on; what is measured is what one more clip costs.
    default_storage.exists("bench/warm-up")
    rss_before = memory_kb("VmRSS")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        _, size = download(url, path)
        downloaded = time.perf_counter() - started
        with path.open("rb") as clip:
            name = default_storage.save("bench/clip.mp4", File(clip))
    elapsed = time.perf_counter() - started
    default_storage.delete(name)
    print(
        json.dumps(
            {
                "bytes": size,
                "seconds": elapsed,
                "download_seconds": downloaded,
                "rss_growth_mb": (memory_kb("VmHWM") - rss_before) / 1024,
            }
        )
    )


def wait_for_port(port: int) -> None:
    import socket

    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child)
        return
    size = options.megabytes * 1024 * 1024
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "served").mkdir()
        with (folder / "served" / "clip.mp4").open("wb") as out:
            block = os.urandom(1024 * 1024)
            for _ in range(options.megabytes):
                out.write(block)
        port, s3_port = free_port(), free_port()
        processes.append(
            subprocess.Popen(
                [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                cwd=folder / "served",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        processes.append(
            subprocess.Popen(
                [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for_port(port)
        wait_for_port(s3_port)
        url = f"http://127.0.0.1:{port}/clip.mp4"
        try:
            started = time.perf_counter()
            subprocess.run(["curl", "-s", "-o", str(folder / "curl.mp4"), url], check=True)
            curl_seconds = time.perf_counter() - started
            (folder / "curl.mp4").unlink()
            print(f"Machine: {machine()}")
            curl_rate = size / curl_seconds / 1e6
            print(f"  curl -o          : {curl_seconds:6.2f} s, {curl_rate:7.1f} MB/s")
            base_env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "bench.settings",
                "DEBUG": "true",
                "KIE_USE_SIMULATOR": "true",
                "RESULT_ALLOW_PRIVATE_URLS": "true",
                "RESULT_MAX_BYTES": str(size * 2),
                "MEDIA_ROOT": str(folder / "media"),
            }
            import boto3

            boto3.client(
                "s3",
                endpoint_url=f"http://127.0.0.1:{s3_port}",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                region_name="us-east-1",
            ).create_bucket(Bucket="bench")
            s3_env = {
                "AWS_STORAGE_BUCKET_NAME": "bench",
                "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_S3_REGION_NAME": "us-east-1",
            }
            for name, extra in (("local disk", {}), ("S3 (moto)", s3_env)):
                printed = subprocess.run(
                    [PYTHON, __file__, "--child", url],
                    cwd=ROOT,
                    env={**base_env, **extra},
                    check=True,
                    capture_output=True,
                ).stdout.decode()
                figures = json.loads(printed.strip().splitlines()[-1])
                rate = figures["bytes"] / figures["download_seconds"] / 1e6
                print(
                    f"  into {name:11s}: {figures['seconds']:6.2f} s in all, download "
                    f"{figures['download_seconds']:6.2f} s = {rate:7.1f} MB/s "
                    f"({rate / curl_rate:.0%} of curl), peak RSS growth "
                    f"{figures['rss_growth_mb']:6.1f} MB ({options.megabytes} MB file)"
                )
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=15)


if __name__ == "__main__":
    main()
