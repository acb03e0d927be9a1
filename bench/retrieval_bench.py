"""How fast results stream into storage, and that memory stays flat whatever the clip's size.

    .venv/bin/python bench/retrieval_bench.py [--megabytes 64 256]

A local HTTP server on 127.0.0.1 serves files of the given sizes; `videos.jobs.download.download`
streams each to disk while hashing it. Peak Python allocations (tracemalloc) are printed per
size: they must not grow with the file.
"""

from __future__ import annotations

import argparse
import http.server
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from videos.jobs.download import download  # noqa: E402


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, nargs="+", default=[64, 256])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in args.megabytes:
            with (folder / f"clip-{size}.mp4").open("wb") as out:
                block = os.urandom(1024 * 1024)
                for _ in range(size):
                    out.write(block)
        server = serve(folder)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        print(f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        for size in args.megabytes:
            target = folder / f"copy-{size}.mp4"
            tracemalloc.start()
            started = time.perf_counter()
            _, stored = download(f"{base}/clip-{size}.mp4", target)
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            target.unlink()
            print(
                f"  {size:4d} MB: {elapsed:6.2f} s, {stored / elapsed / 1e6:7.1f} MB/s, "
                f"peak Python memory {peak / 1e6:5.2f} MB"
            )
        server.shutdown()


if __name__ == "__main__":
    main()
