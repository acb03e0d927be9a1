"""Serving a stored file to a client that may see it.

On storage with a local path (the default disk storage) the file is streamed from here, with
HTTP Range support so players can seek and downloads can resume. On object storage (S3) the
client is redirected to a short-lived signed URL, so the bytes never pass through the web
process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, cast

from django.db.models.fields.files import FieldFile
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from rest_framework.request import Request

CHUNK_BYTES = 64 * 1024
# At most 19 digits a bound: larger numbers name no byte of any file (and int() has limits).
SINGLE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d{0,19})\s*-\s*(\d{0,19})\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    pass


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte the Range header asks for, or None for the whole file.

    Headers this server does not serve (several ranges, other units, nonsense) mean the whole
    file, as HTTP allows. Raises `Unsatisfiable` for a range that starts past the end.
    """
    match = SINGLE_RANGE.match(header or "")
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # "bytes=-N": the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable()
        return max(size - suffix, 0), size - 1
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable()
    return start, size - 1 if last == "" else min(int(last), size - 1)


def _read(file: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        file.seek(start)
        while length > 0:
            chunk = file.read(min(CHUNK_BYTES, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        file.close()


def _unchanged(if_none_match: str | None, quoted_etag: str) -> bool:
    """Whether the client's copy (its If-None-Match) is this version of the file."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or quoted_etag in tags


def stored_file_response(
    request: HttpRequest | Request, stored: FieldFile, *, content_type: str, etag: str | None = None
) -> HttpResponse | StreamingHttpResponse:
    storage = stored.storage
    name = cast(str, stored.name)  # a stored file: only an empty field has no name
    try:
        path = storage.path(name)
    except NotImplementedError:  # object storage: its URL is signed and expires
        return HttpResponseRedirect(storage.url(name))

    size = storage.size(name)
    quoted_etag = f'"{etag}"' if etag else None
    if quoted_etag and _unchanged(request.META.get("HTTP_IF_NONE_MATCH"), quoted_etag):
        not_modified = HttpResponseNotModified()
        not_modified["ETag"] = quoted_etag
        return not_modified
    header = request.META.get("HTTP_RANGE")
    if_range = request.META.get("HTTP_IF_RANGE")
    if header and if_range and if_range.strip() != quoted_etag:
        header = None  # the client's copy is another version: send it all
    try:
        wanted = byte_range(header, size)
    except Unsatisfiable:
        unsatisfiable = JsonResponse(
            {"detail": f"The file has {size} bytes.", "code": "range_not_satisfiable"},
            status=416,
        )
        unsatisfiable["Content-Range"] = f"bytes */{size}"
        return unsatisfiable

    filename = path.rsplit("/", 1)[-1]
    file = open(path, "rb")  # closed by the response when it is sent
    if wanted is None:
        response: HttpResponse | StreamingHttpResponse = FileResponse(
            file, content_type=content_type, filename=filename
        )
    else:
        first, last = wanted
        length = last - first + 1
        response = StreamingHttpResponse(
            _read(file, first, length), status=206, content_type=content_type
        )
        response["Content-Length"] = str(length)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Accept-Ranges"] = "bytes"
    if quoted_etag:
        response["ETag"] = quoted_etag
    return response
