"""Copying a finished clip from the provider's short-lived URL into the platform's storage.

The download streams to a temporary file in chunks (never the whole clip in memory), hashing as
it goes; PyAV then proves the file is a playable video and reads its duration, size, frame rate
and audio; a frame becomes the poster. Only then is the file saved through `default_storage`
(local disk or S3) and the `Asset` row written.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import av
import requests
import urllib3
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from videos import outbound
from videos.image_urls import NotPublic, public_addresses
from videos.models import Asset
from videos.providers.base import ProviderError

if TYPE_CHECKING:
    from videos.models import GenerationJob
    from videos.providers.base import VideoProvider

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
EXPIRED_STATUSES = {403, 404, 410}
POSTER_AT_SECONDS = 1.0


class ResultUnreachable(Exception):
    """The result could not be downloaded now (network, expired link that could not be renewed)."""


class ResultRejected(Exception):
    """The result can never become an asset: not a playable video, empty, or too large."""


class _LinkExpired(Exception):
    pass


@dataclass(frozen=True)
class Probe:
    duration_s: float
    width: int
    height: int
    fps: float
    has_audio: bool
    poster_jpeg: bytes


def store_result(
    job: GenerationJob, provider: VideoProvider, *, on_progress: Callable[[], None] | None = None
) -> Asset:
    """Download, verify and store the job's result; returns its new Asset. `on_progress` is
    called after each chunk read (to show the work is alive)."""
    with tempfile.TemporaryDirectory(prefix="reelforge-") as folder:
        path = Path(folder) / "clip.mp4"
        try:
            sha256, size = download(job.result_url, path, on_progress=on_progress)
        except _LinkExpired:
            url = fresh_result_url(job, provider)
            try:
                sha256, size = download(url, path, on_progress=on_progress)
            except _LinkExpired as exc:
                raise ResultUnreachable("the renewed result link has expired too") from exc
        probe = probe_video(path)
        asset = Asset(
            job=job,
            sha256=sha256,
            size_bytes=size,
            duration_s=probe.duration_s,
            width=probe.width,
            height=probe.height,
            fps=probe.fps,
            has_audio=probe.has_audio,
        )
        with path.open("rb") as clip:
            asset.file.save(f"{job.pk}.mp4", File(clip), save=False)
        asset.poster.save(f"{job.pk}.jpg", ContentFile(probe.poster_jpeg), save=False)
        try:
            with transaction.atomic():
                asset.save()
        except IntegrityError:
            # Another worker stored this result first: keep theirs, drop our copy.
            asset.file.delete(save=False)
            asset.poster.delete(save=False)
            return Asset.objects.get(job=job)
    return asset


def download(
    url: str, path: Path, *, on_progress: Callable[[], None] | None = None
) -> tuple[str, int]:
    """Stream `url` into `path`; returns (sha256 hex, size). Raises _LinkExpired on 403/404/410.

    Redirects are followed by hand, at most RESULT_MAX_REDIRECTS, and every hop must be a public
    address (the first may be private only with RESULT_ALLOW_PRIVATE_URLS, for the simulator).
    The whole download ends by RESULT_DOWNLOAD_TIMEOUT_SECONDS plus one socket read timeout:
    each read returns what one packet brought, so a trickling server cannot stretch it.
    """
    conf = settings.PIPELINE
    deadline = time.monotonic() + conf["RESULT_DOWNLOAD_TIMEOUT_SECONDS"]
    timeout = (conf["RESULT_CONNECT_TIMEOUT_SECONDS"], conf["RESULT_READ_TIMEOUT_SECONDS"])
    digest = hashlib.sha256()
    size = 0
    try:
        with _open_following_redirects(url, timeout=timeout) as response:
            if response.status_code in EXPIRED_STATUSES:
                raise _LinkExpired(f"{response.status_code} from the result URL")
            if response.status_code != 200:
                raise ResultUnreachable(f"HTTP {response.status_code} from the result URL")
            with path.open("wb") as out:
                while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
                    size += len(chunk)
                    if size > conf["RESULT_MAX_BYTES"]:
                        raise ResultRejected("the result is larger than RESULT_MAX_BYTES")
                    if time.monotonic() > deadline:
                        raise ResultUnreachable("the download took too long")
                    digest.update(chunk)
                    out.write(chunk)
                    if on_progress is not None:
                        on_progress()
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise ResultUnreachable(f"download failed ({type(exc).__name__})") from exc
    if size == 0:
        raise ResultRejected("the result is empty")
    return digest.hexdigest(), size


def _open_following_redirects(url: str, *, timeout: tuple[float, float]) -> requests.Response:
    conf = settings.PIPELINE
    for hop in range(conf["RESULT_MAX_REDIRECTS"] + 1):
        addresses = None
        if hop or not conf["RESULT_ALLOW_PRIVATE_URLS"]:
            try:
                addresses = public_addresses(url, name="The result URL")
            except NotPublic as exc:
                raise ResultRejected(f"{exc} ({'a redirect' if hop else 'as given'})") from exc
        response = outbound.request(
            "GET",
            url,
            addresses=addresses,
            headers_within=sum(timeout),  # what one request is allowed, trickled or not
            stream=True,
            timeout=timeout,
            allow_redirects=False,
        )
        if not response.is_redirect:
            return response
        url = urljoin(url, response.headers["Location"])
        response.close()
    raise ResultUnreachable(f"more than {conf['RESULT_MAX_REDIRECTS']} redirects")


def fresh_result_url(job: GenerationJob, provider: VideoProvider) -> str:
    """A working link for an expired result: recordInfo's current URL, else download-url."""
    try:
        status = provider.get_task(job.provider_task_id or "", kind=job.kind)
        if status.result_urls and status.result_urls[0] != job.result_url:
            return status.result_urls[0]
        return provider.fresh_download_url(job.result_url)
    except ProviderError as exc:
        raise ResultUnreachable(f"could not renew the result link: {exc.message}") from exc


def probe_video(path: Path) -> Probe:
    """Open the file with PyAV, decode up to the poster frame, and report what it holds."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ResultRejected("the file has no video stream")
            video = container.streams.video[0]
            width = video.codec_context.width
            height = video.codec_context.height
            fps = float(video.average_rate or video.guessed_rate or 0)
            if container.duration:
                duration = container.duration / av.time_base
            elif video.duration and video.time_base:
                duration = float(video.duration * video.time_base)
            else:
                duration = 0.0
            has_audio = bool(container.streams.audio)
            poster = None
            for frame in container.decode(video):
                poster = frame
                if frame.time is not None and frame.time >= min(POSTER_AT_SECONDS, duration / 2):
                    break
            if poster is None:
                raise ResultRejected("no frame of the video decodes")
            buffer = io.BytesIO()
            poster.to_image().save(buffer, format="JPEG", quality=85)
    except ResultRejected:
        raise
    except (av.FFmpegError, ValueError, IndexError, OSError) as exc:
        raise ResultRejected(f"PyAV cannot read it ({exc})") from exc
    if duration <= 0 or width <= 0 or height <= 0:
        raise ResultRejected("the video reports no duration or size")
    return Probe(
        duration_s=round(duration, 3),
        width=width,
        height=height,
        fps=round(fps, 3),
        has_audio=has_audio,
        poster_jpeg=buffer.getvalue(),
    )
