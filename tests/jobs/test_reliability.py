"""Money and job-lifecycle holes found by trying the platform as an attacker and as a misbehaving
provider would. Each test reproduces one hole (see docs/reliability.md) over real HTTP where the
production code talks HTTP: the simulator, the live callback view, a hostile file server.
"""

from __future__ import annotations

import datetime
import errno
import http.server
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.core.files.storage import FileSystemStorage
from django.db import close_old_connections, connection, connections
from django.utils import timezone

from billing.models import Budget, EntryKind, LedgerEntry
from billing.selectors import job_ledger_total, project_money
from tests.fixtures.simulator import SIMULATOR_HMAC_KEY
from tests.jobs.test_lifecycle import assert_ledger_balanced, create, later, png_upload
from videos import image_urls, jobs
from videos.jobs import download as retrieval
from videos.jobs import gate
from videos.models import GenerationJob, JobState, Kind, ProviderAccount
from videos.providers.kie import sign_callback

S = JobState


def signed_callback(
    platform, job: GenerationJob, data: dict, *, code: int = 200
) -> requests.Response:
    """POST a callback to the job's own URL, signed with the account's webhook key."""
    timestamp = str(int(time.time()))
    headers = {
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": sign_callback(SIMULATOR_HMAC_KEY, data["taskId"], timestamp),
    }
    body: dict[str, Any] = {"code": code, "msg": "success", "data": data}
    return requests.post(
        f"{platform.url}{job.callback_path}", json=body, headers=headers, timeout=10
    )


def finished_at_the_provider(platform, job: GenerationJob) -> dict:
    """The provider's record of the job's task, once it has finished rendering."""
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    status = platform.simulator.provider().get_task(job.provider_task_id)
    return dict(status.raw)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict = {}

    def do_GET(self) -> None:
        self.routes[self.path](self)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[tuple[str, dict]]:
    """A local HTTP server whose routes the test writes: (base URL, path -> handler)."""
    routes: dict = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()
    server.server_close()


# --- 1. Budget oversubscribed by concurrent requests ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_job_creation_never_oversubscribes_the_budget(project):
    jobs.submissions_pause("kie", code="manual", reason="hold submissions for the race")
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("1.10"))
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            start.wait()
            create(project, duration=10, sound=True)  # $1.10: exactly the cap
            outcomes.append("created")
        except jobs.BudgetExceeded:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    assert sorted(outcomes) == ["created"] + ["refused"] * 7
    assert GenerationJob.objects.filter(project=project).count() == 1
    assert project_money(project).committed_usd == Decimal("1.10")


def test_a_job_still_waiting_for_budget_at_month_end_fails_and_holds_nothing(platform, project):
    jobs.submissions_pause("kie", code="manual", reason="night")
    job = create(project)
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.10"))
    jobs.submissions_resume("kie")
    job.refresh_from_db()
    assert job.state == S.QUEUED and job.state_reason.startswith("Waiting for budget")

    next_month = (job.created.replace(day=1) + datetime.timedelta(days=32)).replace(day=1, hour=0)
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("10"))  # a new month
    jobs.sweep(now=next_month + datetime.timedelta(minutes=1))
    job.refresh_from_db()
    assert job.state == S.FAILED
    assert job.provider_error_code == "budget_month_ended"
    assert "month" in job.state_reason
    assert not LedgerEntry.objects.filter(job=job, kind=EntryKind.CHARGE).exists()
    assert project_money(project).reserved_usd == Decimal("0")
    assert platform.simulator.stats()["create_task_calls"] == 0


# --- 2. A signed callback can set any charge ------------------------------------------------


def test_a_signed_callback_cannot_charge_more_than_the_list_price(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])  # $0.28 clip
    record = finished_at_the_provider(platform, job)
    record["consumeCredits"] = 2_000_000  # $10,181.82 at the list's rate

    assert signed_callback(platform, job, record).status_code == 200
    job = platform.wait_for(job)
    assert_ledger_balanced(job, charged=Decimal("0.2800"))
    assert job.charge_discrepancy
    assert "2000000" in job.charge_discrepancy
    assert job.events.filter(reason__contains="above the list price").exists()


def test_a_reported_charge_below_the_list_price_is_what_is_charged(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    record = finished_at_the_provider(platform, job)
    record["consumeCredits"] = 50  # of the 55 a 5 s silent clip lists

    assert signed_callback(platform, job, record).status_code == 200
    job = platform.wait_for(job)
    assert_ledger_balanced(job, charged=Decimal("0.2545"))
    assert job.charge_discrepancy == ""


# --- 3. Image upload refused -> crash, then retried forever --------------------------------


def test_an_image_the_provider_refuses_for_good_fails_the_job_and_releases(platform, project):
    platform.simulator.set_faults(forced_codes={"upload": 422})
    job = create(project, kind=Kind.IMAGE_TO_VIDEO, image=png_upload())
    job.refresh_from_db()
    assert job.state == S.FAILED
    assert job.provider_error_code == "422"
    assert "Simulated answer 422" in job.state_reason
    assert_ledger_balanced(job, charged=Decimal("0"))
    assert platform.simulator.stats()["create_task_calls"] == 0


def test_a_stored_image_that_is_no_image_fails_the_job_instead_of_crashing(platform, project):
    jobs.submissions_pause("kie", code="manual", reason="night")
    job = create(project, kind=Kind.IMAGE_TO_VIDEO, image=png_upload())
    with job.source_image.storage.open(job.source_image.name, "wb") as stored:
        stored.write(b"not an image at all")
    jobs.submissions_resume("kie")
    job.refresh_from_db()
    assert job.state == S.FAILED
    assert job.provider_error_code == "invalid"
    assert_ledger_balanced(job, charged=Decimal("0"))


def test_a_failing_upload_backs_off_and_gives_up_after_its_attempts(platform, project, settings):
    settings.PIPELINE = {**settings.PIPELINE, "UPLOAD_MAX_ATTEMPTS": 3}
    platform.simulator.set_faults(server_error={"rate": 1, "endpoints": ["upload"]})
    job = create(project, kind=Kind.IMAGE_TO_VIDEO, image=png_upload())
    waits = []
    for _ in range(5):
        job.refresh_from_db()
        if job.state != S.QUEUED:
            break
        waits.append((job.submit_after - timezone.now()).total_seconds())
        GenerationJob.objects.filter(pk=job.pk).update(submit_after=None)
        jobs.job_submit(job.pk)
    job.refresh_from_db()
    assert job.state == S.FAILED
    assert "3 attempts" in job.state_reason
    assert waits[1] > waits[0]  # backs off
    assert_ledger_balanced(job, charged=Decimal("0"))


# --- 4. A job can stay `retrieving` forever -------------------------------------------------


def test_a_storage_error_is_a_retrieval_failure_and_ends_in_needs_attention(
    platform, project, monkeypatch
):
    def disk_full(self, name, content):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)
    job = create(project)
    platform.wait_for(job, [S.RETRIEVING])
    platform.simulator.wait_for_stats(lambda s: s["callbacks_sent"] >= 1)
    job.refresh_from_db()
    assert job.state == S.RETRIEVING
    assert "No space left" in job.state_reason  # the error went through the failure path

    counts = jobs.sweep(now=later(2 * 3600))  # past the retrieval deadline
    job.refresh_from_db()
    assert job.state == S.NEEDS_ATTENTION
    assert counts["retrieval_gave_up"] == 1
    assert job_ledger_total(job)[EntryKind.RESERVE] == job.estimated_cost_usd  # kept: it was paid


def test_a_download_stops_at_its_wall_clock_deadline(file_server, settings, tmp_path):
    settings.PIPELINE = {**settings.PIPELINE, "RESULT_DOWNLOAD_TIMEOUT_SECONDS": 2}
    base, routes = file_server

    def trickle(request) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "video/mp4")
        request.send_header("Content-Length", "1000")
        request.end_headers()
        for _ in range(12):  # 1 byte a second, bounded
            try:
                request.wfile.write(b"x")
                request.wfile.flush()
            except OSError:
                return
            time.sleep(1)

    routes["/slow.mp4"] = trickle
    started = time.monotonic()
    with pytest.raises(retrieval.ResultUnreachable, match="took too long"):
        retrieval.download(f"{base}/slow.mp4", tmp_path / "clip.mp4")
    assert time.monotonic() - started < 8  # the 2 s limit, not the trickle's 12 s


# --- 5. Result download follows redirects to internal addresses -----------------------------


def test_a_result_redirect_to_an_internal_address_is_not_followed(file_server, settings, tmp_path):
    base, routes = file_server
    fetched: list[str] = []

    def secret(request) -> None:
        fetched.append(request.path)
        body = b"internal metadata"
        request.send_response(200)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def redirect(request) -> None:
        request.send_response(302)
        request.send_header("Location", f"{base}/latest/meta-data")
        request.send_header("Content-Length", "0")
        request.end_headers()

    routes["/latest/meta-data"] = secret
    routes["/clip.mp4"] = redirect
    with pytest.raises(retrieval.ResultRejected, match="public address"):
        retrieval.download(f"{base}/clip.mp4", tmp_path / "clip.mp4")
    assert fetched == []
    assert not (tmp_path / "clip.mp4").exists() or (tmp_path / "clip.mp4").stat().st_size == 0


def test_results_larger_than_a_long_clip_are_refused_by_default():
    from config import settings as defaults

    assert defaults.PIPELINE["RESULT_MAX_BYTES"] <= 512 * 1024 * 1024


# --- 6. Callback replay amplification -------------------------------------------------------


def test_callbacks_for_a_finished_job_make_no_provider_call(platform, project):
    job = platform.wait_for(create(project))
    record = finished_at_the_provider(platform, job)
    before = platform.simulator.stats()["requests"].get("recordInfo", 0)
    for _ in range(25):
        assert signed_callback(platform, job, record).status_code == 200
    assert platform.simulator.stats()["requests"].get("recordInfo", 0) == before


def test_concurrent_callbacks_for_one_job_are_handled_once(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    record = finished_at_the_provider(platform, job)
    before = platform.simulator.stats()["requests"].get("recordInfo", 0)
    start = threading.Barrier(10)
    answers: list[int] = []

    def replay() -> None:
        start.wait()
        answers.append(signed_callback(platform, job, record).status_code)

    threads = [threading.Thread(target=replay) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == [200] * 10
    platform.wait_for(job)
    assert platform.simulator.stats()["requests"].get("recordInfo", 0) - before == 1
    assert LedgerEntry.objects.filter(job=job, kind=EntryKind.CHARGE).count() == 1


# --- 7. A callback can bind a job to an unchecked task id -----------------------------------


def test_a_callback_cannot_bind_a_job_to_a_task_record_info_did_not_confirm(platform, project):
    job = create(project)
    platform.wait_for(job)
    stray = create(project)
    GenerationJob.objects.filter(pk=stray.pk).update(state=S.NEEDS_ATTENTION, provider_task_id=None)
    platform.simulator.set_faults(forced_codes={"recordInfo": 500})
    data = {
        "taskId": "attacker-chosen-task",
        "state": "success",
        "resultJson": json.dumps({"resultUrls": ["https://evil.example/x.mp4"]}),
    }
    stray.refresh_from_db()
    assert signed_callback(platform, stray, data).status_code == 200
    stray.refresh_from_db()
    assert stray.provider_task_id is None
    assert stray.state == S.NEEDS_ATTENTION


# --- 8. Deeply nested JSON to the callback view ---------------------------------------------


def test_deeply_nested_json_to_the_callback_view_is_a_400(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    body = b'{"data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    answer = requests.post(
        f"{platform.url}{job.callback_path}",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == 400


# --- 9. SQLite write lock held during DNS ---------------------------------------------------


def test_image_urls_are_resolved_before_any_transaction_opens(project, monkeypatch):
    jobs.submissions_pause("kie", code="manual", reason="night")
    seen: list[bool] = []
    # The resolver may run on another thread: look at this thread's connection. pytest-django
    # wraps each test in a transaction; count only the ones the code opens.
    own = connections["default"]
    depth_before = len(own.atomic_blocks)

    def resolve_outside(host: str, port: int) -> list[str]:
        seen.append(len(own.atomic_blocks) > depth_before)
        return ["93.184.215.14"]

    monkeypatch.setattr(image_urls, "resolve_host", resolve_outside)
    create(project, kind=Kind.IMAGE_TO_VIDEO, image_url="https://images.example.com/a.png")
    assert seen == [False]


def test_a_slow_resolver_is_cut_short(monkeypatch, settings):
    settings.PIPELINE = {**settings.PIPELINE, "DNS_TIMEOUT_SECONDS": 0.5}

    def hang(host: str, port: int) -> list[str]:
        time.sleep(5)
        return ["93.184.215.14"]

    monkeypatch.setattr(image_urls, "resolve_host", hang)
    started = time.monotonic()
    problem = image_urls.image_url_problem("https://slow.example.com/a.png")
    assert time.monotonic() - started < 3
    assert problem is not None and "did not resolve in time" in problem


# --- 10. Retry-After is not capped ----------------------------------------------------------


@pytest.mark.parametrize("hint", [100_000, 1e300])
def test_the_wait_a_provider_asks_for_is_capped(platform, project, hint):
    platform.simulator.set_faults(rate_limit=0, retry_after=hint)
    job = create(project)
    job.refresh_from_db()
    assert job.state == S.QUEUED
    wait = (job.submit_after - timezone.now()).total_seconds()
    assert 0 < wait <= 600


def test_a_nonsense_retry_after_is_the_default_backoff():
    from videos.providers.http import retry_after_seconds as _retry_after

    for value in ("nan", "inf", "-5", "soon", "1e400"):
        assert _retry_after(value, time.time) is None, value
    assert _retry_after("12", time.time) == 12.0


# --- 11. A clip that arrives after a timeout -------------------------------------------------


def test_a_timed_out_job_keeps_being_polled_and_an_over_budget_late_charge_is_flagged(
    platform, project
):
    platform.simulator.set_faults(lost_callback=1, forced_codes={"recordInfo": 500})
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    jobs.jobs_poll_due(now=later(16 * 60))
    job.refresh_from_db()
    assert job.state == S.FAILED and job.provider_error_code == "timeout"
    assert project_money(project).reserved_usd == Decimal("0")

    # Meanwhile the month's budget was spent on other things.
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.10"))
    platform.simulator.set_faults(forced_codes={})
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    assert jobs.jobs_poll_due(now=later(60 * 60)) == 1
    job = platform.wait_for(job)
    assert_ledger_balanced(job, charged=Decimal("0.2800"))
    assert "budget" in job.charge_discrepancy


def test_a_timed_out_job_stops_being_polled_once_its_result_would_have_expired(platform, project):
    platform.simulator.set_faults(lost_callback=1, forced_codes={"recordInfo": 500})
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    jobs.jobs_poll_due(now=later(16 * 60))
    job.refresh_from_db()
    assert job.next_poll_at is not None
    assert jobs.jobs_poll_due(now=later(25 * 3600)) == 1
    job.refresh_from_db()
    assert job.next_poll_at is None
    assert jobs.jobs_poll_due(now=later(26 * 3600)) == 0


# --- 12. Batch intake ignores the provider balance ------------------------------------------


@pytest.fixture
def account_with_credits(db):
    def set_credits(credits: int) -> None:
        ProviderAccount.objects.update_or_create(
            provider="kie",
            defaults={"credits_left": Decimal(credits), "credits_checked_at": timezone.now()},
        )

    return set_credits


def test_a_batch_the_provider_balance_cannot_pay_for_is_refused(
    project, account_with_credits, alice
):
    from tests.api.conftest import client_for

    jobs.submissions_pause("kie", code="manual", reason="only intake is under test")
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("1000"))
    account_with_credits(3 * 110)  # three 5 s clips with sound
    api = client_for(alice)
    job = {
        "project": project.pk,
        "kind": "text_to_video",
        "prompt": "A lighthouse at night",
        "duration": 5,
        "sound": True,
    }

    estimate = api.post("/api/v1/estimate/", {"jobs": [job] * 100}, format="json").json()
    assert estimate["provider_credits_left"] == "330.0000"
    assert estimate["credits_needed"] == 11000
    assert estimate["within_balance"] is False
    assert "330" in estimate["balance_message"]

    refused = api.post("/api/v1/jobs/batch/", {"jobs": [job] * 100}, format="json")
    assert refused.status_code == 402
    assert refused.json()["code"] == "insufficient_credits"
    assert "wait_for_credits" in refused.json()["detail"]
    assert not GenerationJob.objects.exists()

    queued = api.post(
        "/api/v1/jobs/batch/", {"jobs": [job] * 100, "wait_for_credits": True}, format="json"
    )
    assert queued.status_code == 201
    assert GenerationJob.objects.count() == 100


# --- 13. Code 505 ----------------------------------------------------------------------------


def test_code_505_fails_that_job_and_pauses_nothing(platform, project, caplog):
    platform.simulator.set_faults(forced_codes={"createTask": 505})
    job = platform.wait_for(create(project), [S.FAILED])
    assert job.provider_error_code == "505"
    assert "Simulated answer 505" in job.state_reason
    assert_ledger_balanced(job, charged=Decimal("0"))
    assert not ProviderAccount.objects.get(provider="kie").is_paused
    assert any(r.levelname == "ERROR" and "505" in r.getMessage() for r in caplog.records)

    platform.simulator.set_faults(forced_codes={})
    platform.wait_for(create(project))


def test_a_download_longer_than_the_task_timeout_is_refused_at_start(settings):
    from django.core.checks import run_checks

    settings.PIPELINE = {**settings.PIPELINE, "RESULT_DOWNLOAD_TIMEOUT_SECONDS": 290}
    assert [e.id for e in run_checks()] == ["reelforge.E001"]
    settings.PIPELINE = {**settings.PIPELINE, "RESULT_DOWNLOAD_TIMEOUT_SECONDS": 200}
    assert run_checks() == []


def test_a_rate_limit_of_zero_is_refused_at_start(settings):
    from django.core.checks import run_checks

    settings.PIPELINE = {**settings.PIPELINE, "RATE_LIMIT_TASKS": 0}
    assert [e.id for e in run_checks()] == ["reelforge.E003"]


def test_a_stale_submission_shorter_than_a_create_task_is_refused_at_start(settings):
    from django.core.checks import run_checks

    settings.PIPELINE = {**settings.PIPELINE, "SUBMIT_STALE_SECONDS": 20}
    assert [e.id for e in run_checks()] == ["reelforge.E004"]
    settings.PIPELINE = {**settings.PIPELINE, "SUBMIT_STALE_SECONDS": 36}
    assert run_checks() == []


def test_a_job_that_needs_attention_is_not_canceled_around_its_operator(project):
    from tests.fixtures.data import make_job

    job = make_job(project, state=S.NEEDS_ATTENTION)
    assert jobs.job_cancel(job=job) is False
    job.refresh_from_db()
    assert job.state == S.NEEDS_ATTENTION


@pytest.mark.django_db(transaction=True)
def test_concurrent_submitters_never_exceed_the_rate_limit(project, settings):
    # Each submitter counts the window after it holds the account's lock: counted in the same
    # statement as the lock, PostgreSQL answers from the snapshot taken before the wait, which
    # misses the slot the previous holder just claimed.
    settings.PIPELINE = {**settings.PIPELINE, "RATE_LIMIT_TASKS": 3, "MAX_IN_FLIGHT": 100}
    jobs.submissions_pause("kie", code="manual", reason="queue them first")
    queued = [create(project) for _ in range(8)]
    jobs.submissions_resume("kie")
    start = threading.Barrier(len(queued))
    claimed: list[str] = []
    errors: list[BaseException] = []

    def claim(job: GenerationJob) -> None:
        try:
            start.wait()
            if gate.claim_submission_slot(job).wait is None:
                claimed.append(str(job.pk))
        except BaseException as exc:  # a crash must fail the test, not look like a refusal
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(job,)) for job in queued]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    assert not errors and not any(thread.is_alive() for thread in threads), errors
    assert len(claimed) == 3
    assert GenerationJob.objects.filter(project=project, state=S.SUBMITTING).count() == 3
