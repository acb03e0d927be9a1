"""A ZIP archive streamed as it is written: its files are read a piece at a time, so a batch
of a hundred clips costs the web process a few chunks of memory, never the whole archive."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterable, Iterator

from django.core.files import File

CHUNK_BYTES = 256 * 1024


class _Pipe:
    """What zipfile writes into: kept until the stream takes it. ZipFile needs only write(),
    flush(), close() and a position for an unseekable file, and then writes data descriptors."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.pieces = b"".join(self.pieces), []
        return data


def zip_stream(files: Iterable[tuple[str, File]]) -> Iterator[bytes]:
    """The archive of `files` ((name in the archive, stored file)), piece by piece. Clips are
    compressed already: they are stored, not deflated again."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for name, stored in files:
            entry = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            with (
                stored.open("rb") as source,
                archive.open(entry, mode="w", force_zip64=True) as target,
            ):
                while chunk := source.read(CHUNK_BYTES):
                    target.write(chunk)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()
