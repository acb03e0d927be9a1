"""HTTP details every provider client shares: a session per thread, sending a request with what
its failure means, reading a Retry-After header, and telling a request that never left from one
the provider may have acted on."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from videos.providers.base import Action, ProviderError

logger = logging.getLogger(__name__)

_sessions = threading.local()


def thread_session() -> requests.Session:
    """This thread's HTTP session: its connections to the provider are kept open between jobs
    (a new TCP connection a call cost a worker more than the call). Sessions are not shared
    between threads, and no client sets headers on them (each request carries its own)."""
    session: requests.Session | None = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    timeout: tuple[float, float],
    may_have_acted: bool = False,
    retries: int = 0,
    retry_pause: float = 1.0,
    **request: Any,
) -> requests.Response:
    """Send one request and return the response, whatever its status; raise ProviderError when
    none came. `what` names the call in messages ("kie.ai createTask").

    `may_have_acted` marks a call the provider could have carried out even if no answer came
    back (a create): it is never repeated, and a lost answer is `Action.UNKNOWN`. `retries`
    repeats any other call on connection errors only, after `retry_pause` doubling each time.
    """
    attempt = 0
    while True:
        try:
            return session.request(method, url, timeout=timeout, **request)
        except requests.ReadTimeout:
            if may_have_acted:
                raise ProviderError(
                    f"{what}: no answer within {timeout[1]:g} s; the task may exist",
                    action=Action.UNKNOWN,
                ) from None
            raise ProviderError(f"{what}: read timeout", action=Action.RETRY) from None
        except requests.ConnectionError as exc:
            if may_have_acted and not never_sent(exc):
                raise ProviderError(
                    f"{what}: connection lost after sending; the task may exist",
                    action=Action.UNKNOWN,
                ) from None
            if attempt < retries:
                attempt += 1
                logger.info("%s: connection error, retry %d of %d", what, attempt, retries)
                time.sleep(retry_pause * 2 ** (attempt - 1))
                continue
            raise ProviderError(
                f"{what}: cannot reach the provider ({type(exc).__name__})", action=Action.RETRY
            ) from None
        except requests.RequestException as exc:
            action = Action.UNKNOWN if may_have_acted else Action.RETRY
            raise ProviderError(f"{what}: {type(exc).__name__}", action=action) from None


def retry_after_seconds(value: str | None, clock: Callable[[], float]) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date).

    None when there is no usable hint (absent, negative, not a number, infinite): the caller
    then backs off as it would without one. How long a hint may be is the caller's to cap.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return max(0.0, when.timestamp() - clock())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before the request left (so the provider saw nothing)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))
