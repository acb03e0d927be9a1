"""Short-lived links to a job's stored clip that need no token: for handing a clip to another
system. On object storage the storage signs them; on local disk Django's signing does, and a
view serves the file."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from videos.models import Asset

if TYPE_CHECKING:
    from videos.models import GenerationJob

SALT = "reelforge.clip-link"


def clip_link(
    job: GenerationJob, *, now: datetime.datetime | None = None
) -> tuple[str, datetime.datetime]:
    """A link to the job's clip and when it stops working; the path is site-relative on disk."""
    seconds = settings.CLIP_LINK_SECONDS
    expires_at = (now or timezone.now()) + datetime.timedelta(seconds=seconds)
    stored = job.asset.file
    name = stored.name or ""
    try:
        stored.storage.path(name)
    except NotImplementedError:  # object storage signs its own URLs
        # S3Storage.url takes `expire`; the base Storage's signature does not say so.
        return stored.storage.url(name, expire=seconds), expires_at  # type: ignore[call-arg]
    token = signing.TimestampSigner(salt=SALT).sign_object({"job": str(job.pk)})
    return reverse("clip-link", args=[token]), expires_at


def asset_for_link(token: str) -> Asset | None:
    """The clip a link names, or None when it is forged, expired or names no clip."""
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(
            token, max_age=settings.CLIP_LINK_SECONDS
        )
    except signing.BadSignature:  # SignatureExpired is one too
        return None
    return Asset.objects.select_related("job").filter(job_id=data.get("job")).first()
