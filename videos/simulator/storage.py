"""Files the simulator serves: rendered results and uploaded images, behind expiring links."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class StoredFile:
    path: Path
    content_type: str
    size: int


@dataclass(frozen=True)
class Link:
    key: str
    name: str
    expires_at: float  # Unix seconds
    kind: str  # "result" | "upload"


class FileStore:
    """Bytes on disk (a private temporary folder) and the links that reach them.

    A link stops working at its expiry, as the provider's result URLs do after about a day; the
    file itself stays, so a fresh link can still be minted for it.
    """

    def __init__(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="kie-simulator-"))
        self._files: dict[str, StoredFile] = {}
        self._links: dict[str, Link] = {}
        self._lock = threading.Lock()

    def put(self, data: bytes, content_type: str) -> str:
        key = secrets.token_hex(12)
        path = self._root / key
        path.write_bytes(data)
        with self._lock:
            self._files[key] = StoredFile(path, content_type, len(data))
        return key

    def link(self, key: str, *, name: str, ttl: float, kind: str) -> str:
        """A URL path ("/files/<token>/<name>") valid for `ttl` seconds."""
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._links[token] = Link(key, name, time.time() + ttl, kind)
        return f"/files/{token}/{quote(name)}"

    def find_link(self, path: str) -> Link | None:
        """The link behind a "/files/<token>/<name>" path, expired or not."""
        parts = path.split("/")
        if len(parts) != 4 or parts[:2] != ["", "files"]:
            return None
        with self._lock:
            return self._links.get(parts[2])

    def open_link(self, path: str) -> StoredFile | None:
        """The file a live link points to; None when unknown or expired."""
        link = self.find_link(path)
        if link is None or link.expires_at <= time.time():
            return None
        with self._lock:
            return self._files.get(link.key)

    def read(self, key: str) -> bytes:
        with self._lock:
            stored = self._files[key]
        return stored.path.read_bytes()

    def clear(self) -> None:
        with self._lock:
            files = list(self._files.values())
            self._files.clear()
            self._links.clear()
        for stored in files:
            stored.path.unlink(missing_ok=True)

    def close(self) -> None:
        self.clear()
        shutil.rmtree(self._root, ignore_errors=True)
