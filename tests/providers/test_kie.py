"""The kie.ai client, against the simulator over real HTTP (no database needed)."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import socket
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.fixtures.images import png_declaring
from tests.fixtures.simulator import CallbackSink, SimulatorHandle
from tests.fixtures.waiting import eventually
from videos.providers import get_provider
from videos.providers.base import (
    IMAGE_MAX_BYTES,
    Action,
    CallbackMalformed,
    CallbackRejected,
    GenerationRequest,
    InvalidRequest,
    ProviderError,
    TaskState,
    TaskStatus,
    check_image_bytes,
)
from videos.providers.http import retry_after_seconds as _retry_after
from videos.providers.kie import (
    KieProvider,
    build_payload,
    decoded_param,
    sign_callback,
)

DATA = Path(__file__).resolve().parents[1] / "data"

TEXT = GenerationRequest(
    kind="text_to_video", prompt="A fox in the snow", duration=5, sound=False, aspect_ratio="16:9"
)


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 120, 200)).save(buffer, fmt)
    return buffer.getvalue()


def wait_until_final(provider: KieProvider, task_id: str, timeout: float = 15.0) -> TaskStatus:
    def final() -> TaskStatus | None:
        status = provider.get_task(task_id)
        return status if status.state.is_final else None

    return eventually(final, timeout=timeout, failure=f"task {task_id} never ended")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- validation and payloads --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "Prompt must be 1 to 1000 characters."),
        ({"prompt": "x" * 1001}, "prompt", "Prompt must be 1 to 1000 characters."),
        ({"prompt": "   "}, "prompt", "Prompt must not be blank."),
        ({"duration": 7}, "duration", "Duration must be 5 or 10 seconds."),
        ({"duration": "5"}, "duration", "Duration must be 5 or 10 seconds."),
        ({"duration": True}, "duration", "Duration must be 5 or 10 seconds."),
        ({"sound": "yes"}, "sound", "Sound must be on or off."),
        ({"aspect_ratio": "4:3"}, "aspect_ratio", "Aspect ratio must be 1:1, 16:9 or 9:16."),
        ({"aspect_ratio": None}, "aspect_ratio", "Aspect ratio must be 1:1, 16:9 or 9:16."),
        (
            {"image_url": "https://example.com/a.png"},
            "image",
            "Text to video takes no image; choose image to video to animate one.",
        ),
        ({"kind": "audio"}, "kind", "Choose text to video or image to video."),
    ],
)
def test_invalid_text_request_is_refused_with_a_message_per_field(changes, field, message):
    request = GenerationRequest(**{**TEXT.__dict__, **changes})
    with pytest.raises(InvalidRequest) as caught:
        KieProvider("key").validate(request)
    assert caught.value.errors[field] == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"aspect_ratio": "16:9"}, "aspect_ratio"),
        ({"image_url": None}, "image"),
        ({"image_url": "ftp://example.com/a.png"}, "image"),
    ],
)
def test_invalid_image_request_is_refused(changes, field):
    base = {
        "kind": "image_to_video",
        "prompt": "pan left",
        "duration": 10,
        "sound": True,
        "image_url": "https://example.com/a.png",
    }
    with pytest.raises(InvalidRequest) as caught:
        KieProvider("key").validate(GenerationRequest(**{**base, **changes}))
    assert set(caught.value.errors) == {field}


def test_prompt_of_exactly_1000_characters_is_valid():
    KieProvider("key").validate(GenerationRequest(**{**TEXT.__dict__, "prompt": "y" * 1000}))


def test_text_payload_matches_the_contract():
    payload = build_payload(
        GenerationRequest("text_to_video", "A fox", 10, True, aspect_ratio="9:16"),
        callback_url="https://example.com/cb",
    )
    assert payload == {
        "model": "kling-2.6/text-to-video",
        "callBackUrl": "https://example.com/cb",
        "input": {"prompt": "A fox", "sound": True, "aspect_ratio": "9:16", "duration": "10"},
    }


def test_image_payload_has_one_image_url_and_no_aspect_ratio():
    payload = build_payload(
        GenerationRequest("image_to_video", "zoom", 5, False, image_url="https://x.test/a.jpg"),
        callback_url=None,
    )
    assert payload == {
        "model": "kling-2.6/image-to-video",
        "input": {
            "prompt": "zoom",
            "image_urls": ["https://x.test/a.jpg"],
            "sound": False,
            "duration": "5",
        },
    }


def test_invalid_request_never_reaches_the_provider(kie_simulator, kie_provider):
    with pytest.raises(InvalidRequest):
        kie_provider.create_task(
            GenerationRequest(**{**TEXT.__dict__, "prompt": ""}), callback_url=None
        )
    assert kie_simulator.stats()["create_task_calls"] == 0


# --- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_image_type_is_read_from_the_bytes(fmt, mime):
    assert check_image_bytes(image_bytes(fmt)) == mime


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The image file is empty."),
        (b"GIF89a" + bytes(100), "Image must be a JPEG, PNG or WebP file."),
        (b"%PDF-1.7 not an image", "Image must be a JPEG, PNG or WebP file."),
        (b"\x89PNG\r\n\x1a\n<html>", "The image file is damaged and cannot be read."),
        (b"\x89PNG\r\n\x1a\n" + bytes(IMAGE_MAX_BYTES), "Image must be at most 10 MB."),
    ],
)
def test_unacceptable_image_bytes_are_refused(data, message):
    with pytest.raises(InvalidRequest) as caught:
        check_image_bytes(data)
    assert caught.value.errors == {"image": message}


def test_the_size_limits_take_what_is_just_inside_them():
    at_the_limit = png_declaring(8192, 8192)
    assert check_image_bytes(at_the_limit + bytes(IMAGE_MAX_BYTES - len(at_the_limit))) == (
        "image/png"
    )
    with pytest.raises(InvalidRequest) as caught:
        check_image_bytes(at_the_limit + bytes(IMAGE_MAX_BYTES - len(at_the_limit) + 1))
    assert caught.value.errors == {"image": "Image must be at most 10 MB."}
    with pytest.raises(InvalidRequest) as caught:
        check_image_bytes(png_declaring(8193, 8192))
    assert caught.value.errors == {"image": "Image must be at most 67 megapixels."}


def test_upload_returns_a_url_serving_the_same_bytes(kie_provider):
    data = image_bytes("JPEG")
    url = kie_provider.upload_image(data, "../holiday photo.png")
    response = requests.get(url, timeout=5)
    assert response.status_code == 200
    assert response.content == data
    assert url.endswith("/holiday-photo.jpg")  # named after what the bytes are, path stripped


def test_a_file_named_like_an_image_is_not_uploaded(kie_simulator, kie_provider):
    with pytest.raises(InvalidRequest) as caught:
        kie_provider.upload_image(b"MZ\x90\x00 pretend executable", "cat.png")
    assert "image" in caught.value.errors
    assert kie_simulator.stats()["requests"].get("upload", 0) == 0


# --- the happy path -----------------------------------------------------------------------------


def test_text_to_video_task_runs_to_success_with_a_playable_result(kie_simulator, kie_provider):
    task_id = kie_provider.create_task(TEXT, callback_url=None)
    assert task_id.startswith("task_kling-2.6_")
    first = kie_provider.get_task(task_id)
    if first.state is not TaskState.SUCCESS:  # a slow machine may first look after it ends
        assert first.state in (TaskState.WAITING, TaskState.QUEUING, TaskState.GENERATING)
        assert first.result_urls == []

    final = wait_until_final(kie_provider, task_id)
    assert final.state is TaskState.SUCCESS
    assert final.model == "kling-2.6/text-to-video"
    assert final.completed_at is not None and final.completed_at.tzinfo is dt.UTC
    assert decoded_param(final.raw) == build_payload(TEXT, callback_url=None)
    video = requests.get(final.result_urls[0], timeout=5)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def test_image_to_video_from_an_uploaded_image(kie_provider):
    url = kie_provider.upload_image(image_bytes("PNG", (90, 160)), "portrait.png")
    request = GenerationRequest("image_to_video", "slow zoom", 5, True, image_url=url)
    status = wait_until_final(kie_provider, kie_provider.create_task(request, callback_url=None))
    assert status.state is TaskState.SUCCESS


def test_credits_left_is_the_balance_and_drops_by_the_price(kie_simulator, kie_provider):
    before = kie_provider.credits_left()
    assert isinstance(before, Decimal) and before == kie_simulator.stats()["credits"]
    kie_provider.create_task(
        GenerationRequest("text_to_video", "x", 10, True, aspect_ratio="1:1"), callback_url=None
    )
    assert kie_provider.credits_left() == before - 220


def test_fresh_download_url_serves_the_result(kie_provider):
    status = wait_until_final(kie_provider, kie_provider.create_task(TEXT, callback_url=None))
    fresh = kie_provider.fresh_download_url(status.result_urls[0])
    assert fresh != status.result_urls[0]
    assert (
        requests.get(fresh, timeout=5).content
        == requests.get(status.result_urls[0], timeout=5).content
    )


def test_fresh_download_url_for_a_foreign_url_fails_with_422(kie_provider):
    with pytest.raises(ProviderError) as caught:
        kie_provider.fresh_download_url("https://example.com/not-from-kie.mp4")
    assert (caught.value.code, caught.value.action) == (422, Action.FAIL)


def test_unknown_task_is_404_and_permanent(kie_provider):
    with pytest.raises(ProviderError) as caught:
        kie_provider.get_task("task_kling-2.6_0")
    assert (caught.value.code, caught.value.action) == (404, Action.FAIL)


# --- every body code in the contract --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (401, Action.PAUSE),
        (402, Action.PAUSE),
        (404, Action.FAIL),
        (422, Action.FAIL),
        (429, Action.RETRY),
        (433, Action.PAUSE),
        (455, Action.RETRY),
        (500, Action.RETRY),
        (501, Action.FAIL),
        (505, Action.FAIL),  # a feature switched off for this request: that job only
    ],
)
def test_each_body_code_on_create_tells_the_caller_what_to_do(
    kie_simulator, kie_provider, code, action
):
    kie_simulator.set_faults(forced_codes={"createTask": code})
    with pytest.raises(ProviderError) as caught:
        kie_provider.create_task(TEXT, callback_url=None)
    assert caught.value.code == code
    assert caught.value.action is action
    assert f"Simulated answer {code}" in caught.value.message
    assert kie_simulator.stats()["create_task_calls"] == 1  # never repeated by the client


@pytest.mark.parametrize(
    ("call", "endpoint"),
    [
        (lambda p: p.get_task("task_kling-2.6_1"), "recordInfo"),
        (lambda p: p.credits_left(), "credit"),
        (lambda p: p.fresh_download_url("https://x.test/a.mp4"), "downloadUrl"),
        (lambda p: p.upload_image(image_bytes(), "a.png"), "upload"),
    ],
)
@pytest.mark.parametrize(
    ("code", "action"), [(455, Action.RETRY), (433, Action.PAUSE), (422, Action.FAIL)]
)
def test_body_codes_are_read_on_every_endpoint(
    kie_simulator, kie_provider, call, endpoint, code, action
):
    kie_simulator.set_faults(forced_codes={endpoint: code})
    with pytest.raises(ProviderError) as caught:
        call(kie_provider)
    assert (caught.value.code, caught.value.action) == (code, action)


def test_wrong_api_key_pauses_and_never_shows_the_key(kie_simulator, caplog):
    secret = "sk-live-very-secret-123"
    provider = kie_simulator.provider(api_key=secret)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError) as caught:
        provider.create_task(TEXT, callback_url=None)
    assert (caught.value.code, caught.value.action) == (401, Action.PAUSE)
    for text in (str(caught.value), repr(caught.value), repr(provider), caplog.text):
        assert secret not in text
    assert kie_simulator.api_key not in repr(kie_simulator.provider())


def test_missing_api_key_pauses_without_sending(kie_simulator):
    with pytest.raises(ProviderError) as caught:
        kie_simulator.provider(api_key="").credits_left()
    assert caught.value.action is Action.PAUSE
    assert kie_simulator.stats()["requests"] == {}


# --- injected faults ------------------------------------------------------------------------------


def test_rate_limit_is_http_200_with_code_429_and_means_retry(kie_simulator, kie_provider):
    kie_simulator.set_faults(rate_limit=2, rate_window=60)
    kie_provider.create_task(TEXT, callback_url=None)
    kie_provider.create_task(TEXT, callback_url=None)
    response_check = requests.post(
        kie_simulator.base_url + "/api/v1/jobs/createTask",
        json=build_payload(TEXT, callback_url=None),
        headers={"Authorization": f"Bearer {kie_simulator.api_key}"},
        timeout=5,
    )
    assert response_check.status_code == 200 and response_check.json()["code"] == 429
    with pytest.raises(ProviderError) as caught:
        kie_provider.create_task(TEXT, callback_url=None)
    assert (caught.value.code, caught.value.action, caught.value.retry_after) == (
        429,
        Action.RETRY,
        None,
    )
    assert kie_simulator.stats()["tasks_created"] == 2


def test_retry_after_header_is_passed_on(kie_simulator, kie_provider):
    kie_simulator.set_faults(rate_limit=0, retry_after=7)
    with pytest.raises(ProviderError) as caught:
        kie_provider.create_task(TEXT, callback_url=None)
    assert caught.value.retry_after == 7.0


def test_retry_after_may_be_an_http_date():
    now = 1_700_000_000.0
    header = "Tue, 14 Nov 2023 22:13:40 GMT"  # now + 20 s
    assert _retry_after(header, lambda: now) == pytest.approx(20.0)
    assert _retry_after("soon", lambda: now) is None


def test_server_error_means_retry_and_creates_nothing(kie_simulator, kie_provider):
    kie_simulator.set_faults(server_error=1.0, retry_after=3)
    with pytest.raises(ProviderError) as caught:
        kie_provider.create_task(TEXT, callback_url=None)
    assert (caught.value.code, caught.value.action, caught.value.retry_after) == (
        500,
        Action.RETRY,
        3.0,
    )
    assert kie_simulator.stats()["tasks_created"] == 0


def test_maintenance_means_retry(kie_simulator, kie_provider):
    kie_simulator.set_faults(maintenance=1.0)
    with pytest.raises(ProviderError) as caught:
        kie_provider.credits_left()
    assert (caught.value.code, caught.value.action) == (455, Action.RETRY)


def test_out_of_credits_pauses(kie_simulator, kie_provider):
    kie_simulator.set_faults(out_of_credits=True)
    with pytest.raises(ProviderError) as caught:
        kie_provider.create_task(TEXT, callback_url=None)
    assert (caught.value.code, caught.value.action) == (402, Action.PAUSE)


def test_a_balance_below_the_price_is_402(kie_simulator, kie_provider):
    kie_simulator.set_credits(54)  # a silent 5 s clip costs 55
    with pytest.raises(ProviderError) as caught:
        kie_provider.create_task(TEXT, callback_url=None)
    assert caught.value.code == 402


def test_garbled_create_answer_is_unknown_because_the_task_exists(kie_simulator, kie_provider):
    kie_simulator.set_faults(malformed_json={"rate": 1, "endpoints": ["createTask"]})
    with pytest.raises(ProviderError) as caught:
        kie_provider.create_task(TEXT, callback_url=None)
    assert caught.value.action is Action.UNKNOWN
    stats = kie_simulator.stats()
    assert (stats["create_task_calls"], stats["tasks_created"]) == (1, 1)


def test_garbled_query_answer_means_retry(kie_simulator, kie_provider):
    task_id = kie_provider.create_task(TEXT, callback_url=None)
    kie_simulator.set_faults(malformed_json=1.0)
    with pytest.raises(ProviderError) as caught:
        kie_provider.get_task(task_id)
    assert caught.value.action is Action.RETRY


def test_read_timeout_on_create_is_unknown_and_never_retried(kie_simulator):
    provider = kie_simulator.provider(read_timeout=0.3)
    kie_simulator.set_faults(slow=1.0, slow_seconds=10.0)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider.create_task(TEXT, callback_url=None)
    assert caught.value.action is Action.UNKNOWN
    assert time.monotonic() - started < 5  # gave up at its timeout, not at the 10 s answer
    stats = kie_simulator.stats()
    assert (stats["create_task_calls"], stats["tasks_created"]) == (1, 1)


def test_read_timeout_on_a_query_is_retry_without_repeating(kie_simulator):
    provider = kie_simulator.provider(read_timeout=0.3)
    kie_simulator.set_faults(slow={"rate": 1, "endpoints": ["credit"]}, slow_seconds=1.0)
    with pytest.raises(ProviderError) as caught:
        provider.credits_left()
    assert caught.value.action is Action.RETRY
    assert kie_simulator.stats()["requests"]["credit"] == 1


def test_a_slow_answer_within_the_timeout_is_fine(kie_simulator):
    kie_simulator.set_faults(slow=1.0, slow_seconds=0.2)
    assert kie_simulator.provider(read_timeout=3).credits_left() > 0


def test_dropped_connection_on_create_is_unknown_and_not_repeated(kie_simulator, kie_provider):
    kie_simulator.set_faults(disconnect={"rate": 1, "endpoints": ["createTask"]})
    with pytest.raises(ProviderError) as caught:
        kie_provider.create_task(TEXT, callback_url=None)
    assert caught.value.action is Action.UNKNOWN
    assert kie_simulator.stats()["create_task_calls"] == 1


def test_a_query_is_retried_after_a_dropped_connection(kie_simulator, kie_provider):
    task_id = kie_provider.create_task(TEXT, callback_url=None)
    kie_simulator.set_faults(disconnect={"rate": 1, "times": 1, "endpoints": ["recordInfo"]})
    assert kie_provider.get_task(task_id).task_id == task_id
    assert kie_simulator.stats()["requests"]["recordInfo"] == 2


def test_a_query_gives_up_after_a_couple_of_retries(kie_simulator):
    provider = kie_simulator.provider(get_retries=2)
    kie_simulator.set_faults(disconnect={"rate": 1, "endpoints": ["credit"]})
    with pytest.raises(ProviderError) as caught:
        provider.credits_left()
    assert caught.value.action is Action.RETRY
    assert kie_simulator.stats()["requests"]["credit"] == 3


def test_unreachable_provider_on_create_is_retry_because_nothing_was_sent():
    provider = KieProvider(
        "key", f"http://127.0.0.1:{free_port()}", connect_timeout=1, retry_pause=0.01
    )
    with pytest.raises(ProviderError) as caught:
        provider.create_task(TEXT, callback_url=None)
    assert caught.value.action is Action.RETRY


def test_failed_generation_is_a_final_fail_with_code_501(kie_simulator, kie_provider):
    kie_simulator.set_faults(generation_failure=1.0)
    before = kie_provider.credits_left()
    status = wait_until_final(kie_provider, kie_provider.create_task(TEXT, callback_url=None))
    assert status.state is TaskState.FAIL
    assert status.fail_code == "501"
    assert status.fail_message
    assert status.result_urls == []
    assert kie_provider.credits_left() == before  # failures are refunded


@pytest.mark.parametrize("field", ["msg", "message"])
def test_the_message_is_read_from_msg_or_message(kie_simulator, kie_provider, field):
    kie_simulator.set_faults(message_field=field, forced_codes={"credit": 455})
    with pytest.raises(ProviderError) as caught:
        kie_provider.credits_left()
    assert "Simulated answer 455" in caught.value.message


# --- callbacks ------------------------------------------------------------------------------------


def test_signed_callbacks_parse_with_either_credit_field(
    kie_simulator, kie_provider, callback_sink
):
    kie_simulator.set_faults(credit_field="alternate")
    ids = [kie_provider.create_task(TEXT, callback_url=callback_sink.url) for _ in range(2)]
    received = callback_sink.wait_for(2)
    bodies = [json.loads(callback.body)["data"] for callback in received]
    assert {"consumeCredits", "creditsConsumed"} <= {key for body in bodies for key in body}
    statuses = {
        status.task_id: status
        for status in (
            kie_provider.parse_callback(callback.body, callback.headers) for callback in received
        )
    }
    assert set(statuses) == set(ids)
    for status in statuses.values():
        assert status.state is TaskState.SUCCESS
        assert status.credits_consumed == Decimal(55)
        assert status.remaining_credits is not None
        assert status.result_urls


def test_failure_callback_is_code_501_with_no_credits(kie_simulator, kie_provider, callback_sink):
    kie_simulator.set_faults(generation_failure=1.0)
    kie_provider.create_task(TEXT, callback_url=callback_sink.url)
    (callback,) = callback_sink.wait_for(1)
    assert json.loads(callback.body)["code"] == 501
    status = kie_provider.parse_callback(callback.body, callback.headers)
    assert (status.state, status.fail_code, status.credits_consumed) == (
        TaskState.FAIL,
        "501",
        Decimal(0),
    )


@pytest.mark.parametrize("mode", ["invalid", "stale", "missing"])
def test_badly_signed_callbacks_are_rejected(kie_simulator, kie_provider, callback_sink, mode):
    kie_simulator.set_faults(callback_signature=mode)
    kie_provider.create_task(TEXT, callback_url=callback_sink.url)
    (callback,) = callback_sink.wait_for(1)
    with pytest.raises(CallbackRejected):
        kie_provider.parse_callback(callback.body, callback.headers)


def test_a_provider_without_hmac_key_accepts_unsigned_callbacks(kie_simulator, callback_sink):
    provider = kie_simulator.provider(hmac_key=None)
    kie_simulator.set_faults(callback_signature="missing")
    task_id = provider.create_task(TEXT, callback_url=callback_sink.url)
    (callback,) = callback_sink.wait_for(1)
    assert provider.parse_callback(callback.body, {}).task_id == task_id


def test_duplicated_callbacks_describe_the_same_outcome(kie_simulator, kie_provider, callback_sink):
    kie_simulator.set_faults(duplicate_callback=1.0)
    kie_provider.create_task(TEXT, callback_url=callback_sink.url)
    first, second = (
        kie_provider.parse_callback(c.body, c.headers) for c in callback_sink.wait_for(2)
    )
    assert (first.task_id, first.state, first.result_urls) == (
        second.task_id,
        second.state,
        second.result_urls,
    )


def test_a_callback_can_arrive_before_create_task_returns(
    kie_simulator, kie_provider, callback_sink
):
    kie_simulator.set_faults(early_callback=1.0)
    task_id = kie_provider.create_task(TEXT, callback_url=callback_sink.url)
    assert len(callback_sink.received) == 1  # already there when the id came back
    assert (
        kie_provider.parse_callback(
            callback_sink.received[0].body, callback_sink.received[0].headers
        ).task_id
        == task_id
    )


def test_a_lost_callback_leaves_polling_to_find_the_result(
    kie_simulator, kie_provider, callback_sink
):
    kie_simulator.set_faults(lost_callback=1.0)
    task_id = kie_provider.create_task(TEXT, callback_url=callback_sink.url)
    assert wait_until_final(kie_provider, task_id).state is TaskState.SUCCESS
    kie_simulator.wait_for_stats(lambda stats: stats["callbacks_lost"] == 1)
    assert callback_sink.received == []


# --- callbacks: recorded documented bodies ------------------------------------------------------


def recorded(name: str) -> bytes:
    return (DATA / name).read_bytes()


def signed_headers(task_id: str, *, key: str = "k", at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": sign_callback(key, task_id, timestamp),
    }


def test_recorded_success_callback():
    status = KieProvider("key").parse_callback(recorded("kie_callback_success.json"), {})
    assert status.task_id == "task_kling-2.6_1765182425861"
    assert status.state is TaskState.SUCCESS
    assert status.result_urls == [
        "https://tempfile.aiquickdraw.com/p/7f3c1e2a9b5d4c6e8f0a1b2c3d4e5f60.mp4"
    ]
    assert status.credits_consumed == Decimal(110)
    assert status.remaining_credits == Decimal(8890)
    assert status.completed_at == dt.datetime(2025, 12, 8, 8, 27, 54, 72000, tzinfo=dt.UTC)
    assert decoded_param(status.raw)["input"]["duration"] == "5"


def test_recorded_success_callback_with_credits_consumed_and_message():
    status = KieProvider("key").parse_callback(
        recorded("kie_callback_success_credits_consumed.json"), {}
    )
    assert (status.state, status.credits_consumed, status.fail_code) == (
        TaskState.SUCCESS,
        Decimal(110),
        None,
    )
    assert status.model == "kling-2.6/image-to-video"


def test_recorded_failure_callback():
    status = KieProvider("key").parse_callback(recorded("kie_callback_fail.json"), {})
    assert status.state is TaskState.FAIL
    assert status.fail_code == "501"
    assert status.fail_message == "Generation failed, please try again later."
    assert status.credits_consumed == Decimal(0)


def test_a_failure_callback_without_state_or_fail_code_is_read_from_the_top_level_code():
    body = json.dumps({"code": 501, "msg": "generation failed", "data": {"taskId": "t1"}}).encode()
    status = KieProvider("key").parse_callback(body, {})
    assert (status.state, status.fail_code, status.fail_message) == (
        TaskState.FAIL,
        "501",
        "generation failed",
    )


def test_result_json_already_decoded_is_accepted():
    document = json.loads(recorded("kie_callback_success.json"))
    document["data"]["resultJson"] = {"resultUrls": ["https://x.test/a.mp4"]}
    status = KieProvider("key").parse_callback(json.dumps(document).encode(), {})
    assert status.result_urls == ["https://x.test/a.mp4"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"code": 200, "data": null}',
        b'{"code": 200, "data": {"state": "success"}}',  # no taskId
        b'{"code": 200, "data": {"taskId": "t", "state": "success", "resultJson": ""}}',  # no URL
        b'{"code": 200, "data": {"taskId": "t", "state": "success", "resultJson": "{not json"}}',
        b'{"code": 200, "data": {"taskId": "t", "state": "exploded"}}',
    ],
)
def test_unreadable_callbacks_are_rejected(body):
    with pytest.raises(CallbackRejected):
        KieProvider("key").parse_callback(body, {})


def test_a_task_id_that_is_no_utf8_is_refused_before_its_signature_is_checked():
    # JSON's escape for a lone surrogate: hashing it for the signature check raised (a 500).
    body = b'{"code": 200, "data": {"taskId": "\\ud800", "state": "fail"}}'
    with pytest.raises(CallbackMalformed):
        KieProvider("key", hmac_key="k").parse_callback(body, signed_headers("t"))


@pytest.mark.parametrize("field", ["resultJson", "param"])
def test_a_signed_callback_with_json_nested_too_deeply_is_rejected(field):
    data = {"taskId": "t", "state": "fail", field: "[" * 5000 + "]" * 5000}
    body = json.dumps({"code": 200, "data": data}).encode()
    with pytest.raises(CallbackRejected):
        KieProvider("key", hmac_key="k").parse_callback(body, signed_headers("t"))


@pytest.mark.parametrize("millis", [10**30, 1e300, 10**400, float("nan")])
def test_a_completion_time_past_any_calendar_is_no_time(millis):
    data = {"taskId": "t", "state": "fail", "completeTime": millis}
    body = json.dumps({"code": 200, "data": data}).encode()
    assert KieProvider("key").parse_callback(body, {}).completed_at is None


@pytest.mark.parametrize("credits", ["NaN", "Infinity", "-Infinity"])
def test_credits_that_are_no_number_are_none(credits):
    data = f'{{"taskId": "t", "state": "fail", "consumeCredits": {credits}}}'
    body = f'{{"code": 200, "data": {data}}}'.encode()
    assert KieProvider("key").parse_callback(body, {}).credits_consumed is None


def test_signature_is_checked_against_the_documented_formula():
    body = recorded("kie_callback_success.json")
    task_id = "task_kling-2.6_1765182425861"
    provider = KieProvider("key", hmac_key="k")
    assert provider.parse_callback(body, signed_headers(task_id)).task_id == task_id
    with pytest.raises(CallbackRejected):
        provider.parse_callback(body, signed_headers(task_id, key="other"))
    with pytest.raises(CallbackRejected):
        provider.parse_callback(body, signed_headers("task_kling-2.6_other"))


def test_signature_headers_are_found_in_wsgi_meta_form_too():
    task_id = "task_kling-2.6_1765182425861"
    headers = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in signed_headers(task_id).items()
    }
    assert KieProvider("key", hmac_key="k").parse_callback(
        recorded("kie_callback_success.json"), headers
    )


def test_timestamp_skew_is_configurable():
    body = recorded("kie_callback_success.json")
    task_id = "task_kling-2.6_1765182425861"
    headers = signed_headers(task_id, at=time.time() - 120)
    assert KieProvider("key", hmac_key="k").parse_callback(body, headers)  # default: 300 s
    with pytest.raises(CallbackRejected):
        KieProvider("key", hmac_key="k", max_callback_skew=60).parse_callback(body, headers)
    with pytest.raises(CallbackRejected):
        KieProvider("key", hmac_key="k").parse_callback(
            body, signed_headers(task_id, at=time.time() + 900)
        )


def test_non_numeric_timestamp_is_rejected():
    headers = {"X-Webhook-Timestamp": "yesterday", "X-Webhook-Signature": "abc"}
    with pytest.raises(CallbackRejected):
        KieProvider("key", hmac_key="k").parse_callback(
            recorded("kie_callback_success.json"), headers
        )


def test_recorded_record_info_while_generating():
    from videos.providers.kie import status_from_record

    data = json.loads(recorded("kie_record_info_generating.json"))["data"]
    status = status_from_record(data, task_id=data["taskId"])
    assert (status.state, status.result_urls, status.completed_at) == (
        TaskState.GENERATING,
        [],
        None,
    )


# --- settings -----------------------------------------------------------------------------------


def test_get_provider_builds_the_kie_client_from_settings(settings):
    settings.KIE_API_KEY = "from-settings"
    settings.KIE_BASE_URL = "http://127.0.0.1:9/"
    settings.KIE_UPLOAD_BASE_URL = "http://127.0.0.1:9/upload"
    settings.KIE_WEBHOOK_HMAC_KEY = "hmac"
    provider = get_provider("kie")
    assert isinstance(provider, KieProvider)
    assert provider.base_url == "http://127.0.0.1:9"
    assert provider.upload_base_url == "http://127.0.0.1:9/upload"
    assert "from-settings" not in repr(provider)


def test_unknown_provider_name_is_an_error():
    with pytest.raises(ValueError):
        get_provider("nope")


def test_the_fixture_handle_reports_how_to_reach_the_simulator(
    kie_simulator: SimulatorHandle, callback_sink: CallbackSink
):
    assert kie_simulator.base_url.startswith("http://127.0.0.1:")
    assert kie_simulator.api_key and kie_simulator.hmac_key
    assert callback_sink.url.startswith("http://127.0.0.1:")
