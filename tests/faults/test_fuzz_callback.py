"""The fuzz pass over the provider callback view: whatever is POSTed to a real job's callback URL
(any JSON, raw bytes, odd content types and lengths, missing or garbled signature headers, the
right token with a wrong signature...) is never answered with a server error, changes nothing
unless it is a valid callback, and never makes the platform call the provider.

kie.ai signs its callbacks (taskId and a timestamp), so a kie job's 200 needs the right
signature; Kling signs nothing, its per-job URL token is the authentication and the outcome is
read back from the API before it is believed. A valid callback is only handed to a worker (the
seam is recorded here, nothing runs): the job itself waits for that worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.data import make_job
from videos.jobs import outcome
from videos.models import GenerationJob, JobState, Project
from videos.providers.kie import sign_callback

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

HMAC_KEY = "fuzz-webhook-key"
TASK_ID = "task-fuzz-0001"
EXAMPLES = 300

# Where the fields of a job that a callback must not touch are read from.
WATCHED = [
    "state",
    "state_reason",
    "provider_task_id",
    "provider_error_code",
    "submitted_at",
    "finished_at",
    "canceled_by_user",
]

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**18, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(["", "success", "fail", "SUCCESS", "generating", "200", "²", "1e999"])
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
# JSON's "\ud800" escape makes a string that is no UTF-8: Hypothesis' text leaves those out.
task_ids = (
    st.just(TASK_ID)
    | st.text(min_size=1)
    | st.sampled_from(["\ud800", "task-\udfff"])
    | json_values
)


def json_text(values: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    return values.map(lambda value: json.dumps(value, allow_nan=True))


# The fields each provider reads, with likely and unlikely values.
result_urls = st.lists(st.just("https://files.example.com/clip.mp4") | st.text(), max_size=2)
kie_data = st.fixed_dictionaries(
    {
        "taskId": task_ids,
        "state": st.sampled_from(["fail"] * 3 + ["success", "generating", "waiting", ""])
        | json_values,
    },
    optional={
        "resultJson": json_text(st.fixed_dictionaries({"resultUrls": result_urls}))
        | json_text(st.fixed_dictionaries({"resultUrls": json_values}))
        | json_values
        | st.just("[" * 5000 + "]" * 5000),
        "failCode": json_values,
        "failMsg": json_values,
        "consumeCredits": json_values,
        "completeTime": st.integers() | st.floats() | json_values,
        "param": json_text(st.fixed_dictionaries({"callBackUrl": st.text()})) | json_values,
        "model": json_values,
    },
)
kie_bodies = st.fixed_dictionaries(
    {"data": kie_data},
    optional={"code": st.sampled_from([200, 501, "200", "501"]) | json_values, "msg": json_values},
)
kling_task = st.fixed_dictionaries(
    {"task_id": task_ids},
    optional={
        "task_status": st.sampled_from(["succeed", "failed", "processing", "submitted"])
        | json_values,
        "task_status_msg": json_values,
        "task_result": st.fixed_dictionaries(
            {"videos": st.lists(st.fixed_dictionaries({"url": json_values}), max_size=2)}
        )
        | json_values,
        "task_info": st.fixed_dictionaries({"external_task_id": json_values}) | json_values,
    },
)
kling_bodies = kling_task | st.fixed_dictionaries({"code": json_values, "data": kling_task})

raw_bodies = (
    st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | st.sampled_from(
        [
            b"",
            b"{",
            b"null",
            b'{"data": {"taskId": "\\ud800"}}',
            b"[" * 50_000 + b"]" * 50_000,
            b"{" + b" " * (300 * 1024) + b"}",
            json.dumps({"data": {"taskId": TASK_ID}}).encode("utf-16"),
        ]
    )
)
content_types = st.sampled_from(
    [
        *["application/json"] * 4,
        "application/json; charset=utf-16",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "",
    ]
)
# Weighted towards a fresh timestamp and the right signature: what a signed body holds is read
# only once its signature has been checked.
# Weighted towards a well-formed request, a fresh timestamp and the right signature: what a
# signed body holds is read only once its signature has been checked.
timestamps = st.sampled_from(["now"] * 12 + ["stale", "none", "odd"])
odd_timestamps = st.text(max_size=20) | st.sampled_from(
    ["", " ", "1e10", "-1", "9" * 5000, "\u0661\u0667" + "\u0660" * 8, str(10**20)]
)
signatures = st.sampled_from(["right"] * 12 + ["wrong key", "other task", "none", "odd"])


@st.composite
def requests_for(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> dict[str, Any]:
    """One request: body bytes, headers (as WSGI environ keys), method, and which token."""
    document = draw(bodies) if draw(st.integers(0, 4)) else None
    if document is None:
        body = draw(raw_bodies)
    else:
        body = json.dumps(document, allow_nan=True, ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass"
        )
    data = document.get("data") if isinstance(document, dict) else None
    task_id = data.get("taskId") if isinstance(data, dict) else None
    environ: dict[str, str] = {}
    stamp = draw(timestamps)
    if stamp == "odd":
        stamp = draw(odd_timestamps)
    if stamp != "none":
        stamp = {"now": str(int(time.time())), "stale": str(int(time.time()) - 3600)}.get(
            stamp, stamp
        )
        environ["HTTP_X_WEBHOOK_TIMESTAMP"] = stamp
    how = draw(signatures)
    signed_task = task_id if isinstance(task_id, str) else TASK_ID
    if how == "right":
        signature = _sign(HMAC_KEY, signed_task, stamp)
    elif how == "wrong key":
        signature = _sign("not-the-key", signed_task, stamp)
    elif how == "other task":
        signature = _sign(HMAC_KEY, signed_task + "x", stamp)
    else:
        signature = draw(st.text(max_size=60))
    if how != "none":
        environ["HTTP_X_WEBHOOK_SIGNATURE"] = signature
    if draw(st.integers(0, 9)) == 0:
        # Never more than the body: the test client's input refuses to read past its end, where
        # a server's would wait. Garbled, negative and oversized ones are answered before.
        environ["CONTENT_LENGTH"] = draw(
            st.sampled_from(["abc", "-1", "", f" {len(body)} ", str(10**9), "0", "1e3"])
        )
    return {
        "body": body,
        "environ": environ,
        "content_type": draw(content_types),
        "method": draw(st.sampled_from(["POST"] * 12 + ["GET", "PUT", "DELETE"])),
        "token": draw(st.sampled_from(["right"] * 12 + ["wrong", "empty"])),
    }


def _sign(key: str, task_id: str, stamp: str) -> str:
    try:
        return sign_callback(key, task_id, stamp)
    except UnicodeEncodeError:
        return "unsignable"


def correctly_signed(request: dict[str, Any]) -> bool:
    """Whether the request carries a fresh, right signature for its body's taskId."""
    try:
        document = json.loads(request["body"])
        task_id = document["data"]["taskId"]
        stamp = request["environ"]["HTTP_X_WEBHOOK_TIMESTAMP"]
        signature = request["environ"]["HTTP_X_WEBHOOK_SIGNATURE"]
        fresh = abs(time.time() - int(stamp.strip())) <= 300
    except (ValueError, TypeError, KeyError):
        return False
    return (
        fresh
        and isinstance(task_id, str)
        and signature.strip() == _sign(HMAC_KEY, task_id, stamp.strip())
    )


@pytest.fixture
def handed_to_workers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """What the view handed to a worker (nothing runs), and no outbound HTTP at all."""
    handed: list[tuple[Any, ...]] = []
    monkeypatch.setattr(outcome, "async_task", lambda *args, **kwargs: handed.append(args))

    def no_http(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the callback view made an HTTP request: {args[1:]!r}")

    monkeypatch.setattr("requests.adapters.HTTPAdapter.send", no_http)
    return handed


@pytest.fixture
def callback_settings(settings: Any) -> None:
    settings.KIE_WEBHOOK_HMAC_KEY = HMAC_KEY
    # Every valid callback is handed on (none is dropped as a repeat of the one before), so each
    # is checked for what a worker would get.
    settings.PIPELINE = {**settings.PIPELINE, "CALLBACK_DEDUP_SECONDS": 0}
    settings.KLING_ACCESS_KEY = "fuzz-access"
    settings.KLING_SECRET_KEY = "fuzz-secret"


def generating_job(project: Project, provider: str) -> GenerationJob:
    return make_job(
        project,
        provider=provider,
        state=JobState.GENERATING,
        provider_task_id=TASK_ID,
        submitted_at=timezone.now(),
        next_poll_at=timezone.now(),
    )


def snapshot(job: GenerationJob) -> tuple[dict[str, Any], int]:
    row = GenerationJob.objects.values(*WATCHED).get(pk=job.pk)
    return row, job.events.count()


def post(client: Client, job: GenerationJob, request: dict[str, Any]) -> Any:
    token = {"right": job.callback_token, "wrong": "not-the-token", "empty": "-"}[request["token"]]
    path = job.callback_path.replace(job.callback_token, token)
    return client.generic(
        request["method"],
        path,
        request["body"],
        content_type=request["content_type"],
        **request["environ"],
    )


@pytest.fixture
def fuzzed(
    project: Project, callback_settings: None, handed_to_workers: list[tuple[Any, ...]]
) -> Iterator[Client]:
    yield Client()


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check_answer(
    answer: Any,
    request: dict[str, Any],
    before: Any,
    job: GenerationJob,
    handed: list[Any],
    *,
    signed: bool,
) -> None:
    assert answer.status_code < 500, (answer.status_code, request)
    accepted = answer.status_code == 200
    if accepted:
        assert request["method"] == "POST" and request["token"] == "right", request
        if signed:
            assert correctly_signed(request), request
        for _task, _job_id, payload, _verified in handed:
            # What a worker gets is what it can use: a credit figure is a finite number.
            credits = payload["credits_consumed"]
            assert credits is None or Decimal(credits).is_finite(), request
    else:
        assert not handed, (answer.status_code, request)
    # The view changes nothing itself: a valid callback is a worker's to apply.
    assert snapshot(job) == before, request


def fuzz_once(
    fuzzed: Client,
    project: Project,
    handed: list[Any],
    request: dict[str, Any],
    *,
    provider: str,
    signed: bool,
) -> None:
    """Post one fuzzed request to the callback view of a job on `provider`, and check it."""
    job = GenerationJob.objects.filter(provider=provider).first() or generating_job(
        project, provider
    )
    before = snapshot(job)
    handed.clear()
    check_answer(post(fuzzed, job, request), request, before, job, handed, signed=signed)


@given(request=requests_for(kie_bodies))
@FUZZ_SETTINGS
def test_kie_callbacks_never_fail_and_change_nothing_unless_signed(
    request: dict[str, Any], fuzzed: Client, project: Project, handed_to_workers: list[Any]
) -> None:
    fuzz_once(fuzzed, project, handed_to_workers, request, provider="kie", signed=True)


@given(request=requests_for(kling_bodies))
@FUZZ_SETTINGS
def test_kling_callbacks_never_fail_and_change_nothing(
    request: dict[str, Any], fuzzed: Client, project: Project, handed_to_workers: list[Any]
) -> None:
    fuzz_once(fuzzed, project, handed_to_workers, request, provider="kling", signed=False)
