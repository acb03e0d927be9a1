"""What can go wrong, on purpose: the simulator's fault settings.

Every probabilistic fault is a `FaultRule`: a rate (0..1), optionally a number of times it may
still fire, and optionally the endpoints it applies to. In JSON (the control endpoint) a rule is
either a bare rate, `0.3`, or an object, `{"rate": 1, "times": 2, "endpoints": ["createTask"]}`;
`null` or `0` turns it off.
"""

from __future__ import annotations

import collections
import random
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Endpoint names, as faults and statistics refer to them.
CREATE_TASK = "createTask"
RECORD_INFO = "recordInfo"
CREDIT = "credit"
DOWNLOAD_URL = "downloadUrl"
UPLOAD = "upload"
ENDPOINTS = (CREATE_TASK, RECORD_INFO, CREDIT, DOWNLOAD_URL, UPLOAD)

CREDIT_FIELDS = ("consumeCredits", "creditsConsumed", "alternate")
MESSAGE_FIELDS = ("msg", "message", "alternate")
CALLBACK_SIGNATURES = ("valid", "invalid", "stale", "missing")


@dataclass
class FaultRule:
    rate: float = 0.0
    times: int | None = None  # how many more times it may fire; None: no limit
    endpoints: frozenset[str] | None = None  # None: every endpoint

    def fires(self, rng: random.Random, endpoint: str | None = None) -> bool:
        """Decide (and count) one occurrence. Call with the simulator's lock held."""
        if self.rate <= 0 or self.times == 0:
            return False
        if endpoint is not None and self.endpoints is not None and endpoint not in self.endpoints:
            return False
        if self.rate < 1 and rng.random() >= self.rate:
            return False
        if self.times is not None:
            self.times -= 1
        return True

    @classmethod
    def parse(cls, value: Any, name: str) -> FaultRule:
        if value is None or value is False:
            return cls()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(rate=_rate(value, name))
        if value is True:
            return cls(rate=1.0)
        if isinstance(value, dict):
            unknown = set(value) - {"rate", "times", "endpoints"}
            if unknown:
                raise ValueError(f"{name}: unknown keys {sorted(unknown)}")
            times = value.get("times")
            if times is not None and (
                not isinstance(times, int) or isinstance(times, bool) or times < 0
            ):
                raise ValueError(f"{name}.times must be a non-negative integer")
            endpoints = value.get("endpoints")
            if endpoints is not None:
                if not isinstance(endpoints, list) or not set(endpoints) <= set(ENDPOINTS):
                    raise ValueError(
                        f"{name}.endpoints must be a list drawn from {list(ENDPOINTS)}"
                    )
                endpoints = frozenset(endpoints)
            return cls(rate=_rate(value.get("rate", 1.0), name), times=times, endpoints=endpoints)
        raise ValueError(f"{name} must be a rate, an object or null")

    def to_json(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "times": self.times,
            "endpoints": sorted(self.endpoints) if self.endpoints is not None else None,
        }


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name}.rate must be a number from 0 to 1")
    return float(value)


@dataclass
class Faults:
    # Answers to API calls (after the API key is checked).
    server_error: FaultRule = field(
        default_factory=FaultRule
    )  # HTTP 500, body code 500, nothing done
    maintenance: FaultRule = field(
        default_factory=FaultRule
    )  # HTTP 200, body code 455, nothing done
    malformed_json: FaultRule = field(default_factory=FaultRule)  # work done, body cut short
    slow: FaultRule = field(default_factory=FaultRule)  # work done, answer delayed by slow_seconds
    slow_seconds: float = 2.0
    disconnect: FaultRule = field(
        default_factory=FaultRule
    )  # work done, connection closed, no answer
    forced_codes: dict[str, int] = field(
        default_factory=dict
    )  # endpoint -> body code, nothing done
    # Account.
    rate_limit: int | None = None  # new tasks accepted per rate_window; beyond: HTTP 200, code 429
    rate_window: float = 10.0
    retry_after: float | None = None  # adds Retry-After to 429 / 455 / 5xx answers
    out_of_credits: bool = False  # createTask answers code 402 whatever the balance
    # Tasks and their callbacks.
    generation_failure: FaultRule = field(default_factory=FaultRule)  # task ends in state fail, 501
    lost_callback: FaultRule = field(default_factory=FaultRule)
    duplicate_callback: FaultRule = field(default_factory=FaultRule)
    early_callback: FaultRule = field(
        default_factory=FaultRule
    )  # callback before createTask answers
    callback_signature: str = "valid"  # valid | invalid | stale | missing (when an HMAC key is set)
    # Result files.
    expired_result: FaultRule = field(
        default_factory=FaultRule
    )  # a finished task's result URL has expired already; download-url still mints a fresh one
    slow_result: FaultRule = field(
        default_factory=FaultRule
    )  # a result file's first byte comes slow_seconds late
    # Kling routes: a valid token is refused as expired (code 1004), as after clock drift.
    expired_token: FaultRule = field(default_factory=FaultRule)
    # Documented spellings that clients must both accept.
    credit_field: str = "alternate"  # consumeCredits | creditsConsumed | alternate
    message_field: str = "msg"  # msg | message | alternate

    def updated(self, patch: dict[str, Any]) -> Faults:
        """A copy with `patch` (JSON-style values) applied; raises ValueError on bad input."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in patch.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}")
            if known[name].type == "FaultRule":
                changes[name] = FaultRule.parse(value, name)
            elif name == "forced_codes":
                changes[name] = _forced_codes(value)
            elif name in ("rate_limit",):
                changes[name] = _optional_int(value, name, minimum=0)
            elif name in ("retry_after",):
                changes[name] = None if value is None else _number(value, name)
            elif name in ("slow_seconds", "rate_window"):
                changes[name] = _number(value, name)
            elif name == "out_of_credits":
                if not isinstance(value, bool):
                    raise ValueError("out_of_credits must be true or false")
                changes[name] = value
            else:
                choices = {
                    "callback_signature": CALLBACK_SIGNATURES,
                    "credit_field": CREDIT_FIELDS,
                    "message_field": MESSAGE_FIELDS,
                }[name]
                if value not in choices:
                    raise ValueError(f"{name} must be one of {list(choices)}")
                changes[name] = value
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            result[f.name] = value.to_json() if isinstance(value, FaultRule) else value
        return result

    def copy(self) -> Faults:
        return self.updated(self.to_json())


def _forced_codes(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("forced_codes must map endpoint names to codes")
    codes = {}
    for endpoint, code in value.items():
        if endpoint not in ENDPOINTS:
            raise ValueError(f"forced_codes: unknown endpoint {endpoint!r}; use {list(ENDPOINTS)}")
        if code is None:
            continue
        # 100-999: kie.ai body codes; 1000-5999: Kling codes, for its routes.
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 5999:
            raise ValueError(f"forced_codes.{endpoint} must be a code such as 433")
        codes[endpoint] = code
    return codes


def _optional_int(value: Any, name: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, or null")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return float(value)


class RateLimiter:
    """A sliding window over accepted new tasks. Call with the simulator's lock held."""

    def __init__(self) -> None:
        self._accepted: collections.deque[float] = collections.deque()

    def wait(self, limit: int | None, window: float) -> float | None:
        """None when a new task may start now, else the seconds until a slot frees up."""
        now = time.monotonic()
        while self._accepted and self._accepted[0] <= now - window:
            self._accepted.popleft()
        if limit is None or len(self._accepted) < limit:
            return None
        return max(0.0, self._accepted[0] + window - now) if self._accepted else window

    def record(self) -> None:
        self._accepted.append(time.monotonic())

    def clear(self) -> None:
        self._accepted.clear()
