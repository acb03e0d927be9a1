from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from videos import monitoring
from videos.api.files import stored_file_response
from videos.clip_links import asset_for_link
from videos.jobs import callback_accept
from videos.models import GenerationJob
from videos.providers import get_provider
from videos.providers.base import CallbackMalformed, CallbackRejected

logger = logging.getLogger(__name__)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Public liveness: "ok", or "degraded" while submissions are paused. The details (why, the
    queue, jobs by state) are for operators: `operations_status` and `metrics`."""
    return JsonResponse({"status": "ok" if monitoring.is_healthy() else "degraded"})


def _is_operator(request: HttpRequest) -> bool:
    user = request.user
    if user.is_authenticated and user.is_active and user.is_superuser:
        return True
    return monitoring.metrics_token_matches(request.headers.get("Authorization"))


@require_GET
def operations_status(request: HttpRequest) -> JsonResponse:
    """Pause reasons, queue depth, oldest queued job and jobs by state: for a superuser's
    session or the metrics token; everyone else is told nothing is here."""
    if not _is_operator(request):
        raise Http404()
    return JsonResponse(monitoring.operations_status().as_dict())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The same figures in Prometheus' text format, for the bearer of METRICS_TOKEN. Without a
    token configured there is no endpoint (404); a wrong or missing token is a 403."""
    if not settings.METRICS_TOKEN:
        raise Http404()
    if not monitoring.metrics_token_matches(request.headers.get("Authorization")):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(
        monitoring.prometheus_text(monitoring.operations_status()),
        content_type=CONTENT_TYPE_LATEST,
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
