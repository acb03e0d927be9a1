"""Log lines: a request id on every line of a request and of the worker tasks it enqueues,
echoed to the client; JSON lines on request; secrets never written."""

from __future__ import annotations

import json
import logging

import pytest
from django_q.tasks import async_task

from config import logs
from config.middleware import HEADER

pytestmark = pytest.mark.django_db


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    rec = logging.LogRecord("videos.test", logging.WARNING, __file__, 1, message, args, None)
    logs.RequestIdFilter().filter(rec)
    return rec


def test_a_request_gets_an_id_and_is_answered_with_it(client):
    generated = client.get("/healthz/")
    given = client.get("/healthz/", HTTP_X_REQUEST_ID="edge-7f3a9c21")
    assert len(generated[HEADER]) == 32
    assert given[HEADER] == "edge-7f3a9c21"


@pytest.mark.parametrize("header", ["short", "x" * 65, "bad id with spaces", "a\nforged: line"])
def test_an_unacceptable_incoming_id_is_replaced(client, header):
    response = client.get("/healthz/", HTTP_X_REQUEST_ID=header)
    assert response[HEADER] != header and len(response[HEADER]) == 32


def test_every_line_of_a_request_carries_its_id(client, caplog):
    caplog.handler.addFilter(logs.RequestIdFilter())
    with caplog.at_level(logging.WARNING, logger="django.request"):
        client.get("/no-such-page/", HTTP_X_REQUEST_ID="trace-0001-abcd")
    not_found = [r for r in caplog.records if "Not Found" in r.getMessage()]
    assert not_found and not_found[0].request_id == "trace-0001-abcd"
    assert logs.request_id.get() is None  # forgotten once the response is closed


def test_a_worker_task_runs_under_the_id_of_the_request_that_enqueued_it(monkeypatch):
    seen: list[str | None] = []
    monkeypatch.setattr(
        "tests.config.test_logs.task_body", lambda: seen.append(logs.request_id.get())
    )
    enqueued: list[dict] = []

    def capture(sender, task, **kwargs):
        enqueued.append(dict(task))

    from django_q.signals import pre_enqueue

    pre_enqueue.connect(capture)
    try:
        token = logs.request_id.set("req-from-the-web-1")
        async_task("tests.config.test_logs.run_task_body", sync=True)
        logs.request_id.reset(token)
    finally:
        pre_enqueue.disconnect(capture)
    assert enqueued[0]["request_id"] == "req-from-the-web-1"
    assert seen == ["req-from-the-web-1"]

    # In a worker process nothing is set; the task's id is adopted, then dropped again.
    logs.task_adopt_request_id(None, task={"request_id": "req-2-abcdefgh"})
    assert logs.request_id.get() == "req-2-abcdefgh"
    logs.task_restore_request_id(None, task={})
    logs.task_adopt_request_id(None, task={})  # the sweep: no request behind it
    assert logs.request_id.get() is None
    logs.task_restore_request_id(None, task={})


def task_body() -> None:  # replaced by the test
    pass


def run_task_body() -> None:
    task_body()


def test_json_lines_have_the_fields_a_collector_needs():
    token = logs.request_id.set("req-json-0001")
    try:
        rec = record("job %s moved", "abc")
    finally:
        logs.request_id.reset(token)
    line = json.loads(logs.JsonFormatter().format(rec))
    assert line["message"] == "job abc moved"
    assert line["request_id"] == "req-json-0001"
    assert line["level"] == "WARNING" and line["logger"] == "videos.test"
    assert line["time"].endswith("+00:00")


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        (
            "Not Found: /callbacks/kie/0d6b2c8e-5a53-4f43-9a4c-5b6f0c1f7e11/s3cr3tT0kenValue_abc/",
            "s3cr3tT0kenValue_abc",
        ),
        (
            "Bad Request: /clips/eyJqb2IiOiIxIn0:1tPqZx:abcdefghijkl/",
            "eyJqb2IiOiIxIn0:1tPqZx:abcdefghijkl",
        ),
        ("sent Authorization: Bearer sk-live-0123456789abcdef", "sk-live-0123456789abcdef"),
        ("api_key=0123456789abcdef0123", "0123456789abcdef0123"),
    ],
)
def test_secrets_are_redacted_from_log_lines(message, secret):
    rec = record(message)
    assert secret not in rec.getMessage()
    assert "[redacted]" in rec.getMessage()


def test_log_format_must_be_plain_or_json():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.logging_config(level="INFO", fmt="xml")
