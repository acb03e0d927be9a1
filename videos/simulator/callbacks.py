"""Completion callbacks, signed the way the provider signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

logger = logging.getLogger(__name__)

STALE_BY_SECONDS = 3600  # how old a "stale" signed timestamp is made


def signature(hmac_key: str, task_id: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key, taskId + "." + timestamp))."""
    digest = hmac.new(hmac_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signing_headers(
    hmac_key: str, task_id: str, now: float, *, mode: str = "valid"
) -> dict[str, str]:
    """X-Webhook-Timestamp / X-Webhook-Signature, honest or deliberately wrong.

    mode: "valid", "invalid" (signed with another key), "stale" (correctly signed, an hour old)
    or "missing" (no headers at all).
    """
    if mode == "missing":
        return {}
    timestamp = str(int(now) - (STALE_BY_SECONDS if mode == "stale" else 0))
    key = hmac_key if mode != "invalid" else hmac_key + "-wrong"
    return {
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": signature(key, task_id, timestamp),
    }


@dataclass(frozen=True)
class Delivery:
    status: int | None  # HTTP status the receiver answered; None when it could not be reached
    error: str | None = None


def post_callback(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> Delivery:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return Delivery(response.status)
    except urllib.error.HTTPError as exc:
        return Delivery(exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        # The URL may carry a per-job secret: it stays out of the log.
        logger.info("callback delivery failed: %s", type(exc).__name__)
        return Delivery(None, type(exc).__name__)
