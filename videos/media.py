"""A job's stored files for people signed in to the admin or the portal.

Files are never public: each request is checked against the job's team (`job_for_files`), then
served by `stored_file_response` (Range requests on local disk; a short-lived signed redirect on
S3). Strangers and anonymous visitors alike get a 404: a login redirect would be useless to a
<video> or <img> element, and a 404 tells nobody that the job exists.
"""

from __future__ import annotations

import mimetypes
from typing import TYPE_CHECKING

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from videos.api.files import stored_file_response
from videos.selectors import job_for_files

if TYPE_CHECKING:
    from videos.models import Asset, GenerationJob

FileResponseType = HttpResponse | StreamingHttpResponse
IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp"}


def job_clip_url(job: GenerationJob) -> str:
    return reverse("job-clip", args=[job.pk])


def job_poster_url(job: GenerationJob) -> str:
    return reverse("job-poster", args=[job.pk])


def job_source_image_url(job: GenerationJob) -> str:
    return reverse("job-source-image", args=[job.pk])


def _asset(request: HttpRequest, job_id: str) -> Asset:
    job = job_for_files(user=request.user, job_id=job_id)
    asset = getattr(job, "asset", None) if job is not None else None
    if asset is None:
        raise Http404("No such clip.")
    return asset


# `private`: a shared cache must never hand one member's file to somebody else.
@require_safe
@cache_control(private=True, max_age=300)
def job_clip(request: HttpRequest, job_id: str) -> FileResponseType:
    asset = _asset(request, job_id)
    return stored_file_response(request, asset.file, content_type="video/mp4", etag=asset.sha256)


@require_safe
@cache_control(private=True, max_age=300)
def job_poster(request: HttpRequest, job_id: str) -> FileResponseType:
    asset = _asset(request, job_id)
    if not asset.poster:
        raise Http404("This clip has no poster.")
    return stored_file_response(request, asset.poster, content_type="image/jpeg")


@require_safe
@cache_control(private=True, max_age=300)
def job_source_image(request: HttpRequest, job_id: str) -> FileResponseType:
    job = job_for_files(user=request.user, job_id=job_id)
    if job is None or not job.source_image:
        raise Http404("No such image.")
    guessed = mimetypes.guess_type(job.source_image.name or "")[0] or ""
    # Only the image types a job accepts are served as what they are; anything else is bytes.
    content_type = guessed if guessed in IMAGE_TYPES else "application/octet-stream"
    return stored_file_response(request, job.source_image, content_type=content_type)
