from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from videos.api.files import stored_file_response
from videos.clip_links import asset_for_link
from videos.jobs import callback_accept
from videos.models import GenerationJob, ProviderAccount
from videos.providers import get_provider
from videos.providers.base import CallbackMalformed, CallbackRejected

logger = logging.getLogger(__name__)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness plus what operators must know: whether submissions are paused, and why."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    paused = {
        account.provider: {
            "code": account.pause_code,
            "reason": account.pause_reason,
            "since": account.paused_at.isoformat(),  # type: ignore[union-attr]  # paused only
        }
        for account in ProviderAccount.objects.filter(paused_at__isnull=False)
    }
    return JsonResponse(
        {"status": "degraded" if paused else "ok", "database": "ok", "submissions_paused": paused}
    )


def _answer(code: int, msg: str, status: int = 200) -> JsonResponse:
    return JsonResponse({"code": code, "msg": msg}, status=status)


@csrf_exempt
@require_POST
def kie_callback(request: HttpRequest, job_id: str, token: str) -> JsonResponse:
    """The provider's completion POST: authenticate it, hand it to a worker, answer at once.

    Unknown jobs and wrong tokens change nothing and learn nothing (the same 404 either way).
    """
    limit = settings.PIPELINE["CALLBACK_MAX_BYTES"]
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _answer(413, "callback body too large", status=413)

    job = (
        GenerationJob.objects.filter(pk=job_id)
        .only(
            "pk", "callback_token", "provider", "state", "provider_error_code", "canceled_by_user"
        )
        .first()
    )
    if job is None or not hmac.compare_digest(job.callback_token.encode(), token.encode()):
        return _answer(404, "not found", status=404)

    body = request.read(limit + 1)
    if len(body) > limit:
        return _answer(413, "callback body too large", status=413)
    try:
        status = get_provider(job.provider).parse_callback(body, request.headers)
    except CallbackMalformed as exc:
        logger.warning("Unreadable callback for job %s: %s", job.pk, exc)
        return _answer(400, "malformed callback", status=400)
    except CallbackRejected as exc:
        logger.warning("Rejected a callback for job %s: %s", job.pk, exc)
        return _answer(401, "rejected", status=401)

    callback_accept(job, status, verified=bool(settings.KIE_WEBHOOK_HMAC_KEY))
    return _answer(200, "success")


@require_GET
def clip_by_link(request: HttpRequest, token: str) -> HttpResponse | StreamingHttpResponse:
    """A clip by a signed, short-lived link (no token): 404 when forged or expired."""
    asset = asset_for_link(token)
    if asset is None:
        raise Http404("This link is not valid, or has expired.")
    return stored_file_response(request, asset.file, content_type="video/mp4", etag=asset.sha256)
