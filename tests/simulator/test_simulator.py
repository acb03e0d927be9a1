"""The kie.ai simulator: rendering, the HTTP contract, the task lifecycle and every fault.

Talks to the simulator with plain `requests`, not through the client, so a bug shared by both
cannot hide itself. No database needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import av
import pytest
import requests
from PIL import Image

from tests.fixtures.simulator import SimulatorHandle
from tests.fixtures.waiting import eventually
from videos.simulator import Faults, KieSimulator, RenderSettings, SimulatorConfig
from videos.simulator.faults import FaultRule
from videos.simulator.rendering import (
    RenderError,
    frame_size,
    render_image_to_video,
    render_text_to_video,
)
from videos.simulator.service import parse_multipart
from videos.simulator.tasks import SimTask

SMALL = RenderSettings(long_side=160, fps=12)
CREATE = "/api/v1/jobs/createTask"


def text_body(**changes: Any) -> dict[str, Any]:
    task_input = {
        "prompt": "A lighthouse at dusk",
        "sound": False,
        "aspect_ratio": "16:9",
        "duration": "5",
    }
    body = {"model": "kling-2.6/text-to-video", "input": task_input}
    for key, value in changes.items():
        if key in task_input or key == "image_urls":
            task_input[key] = value
        else:
            body[key] = value
    return body


class Api:
    """Raw HTTP calls with the simulator's key."""

    def __init__(self, handle: SimulatorHandle) -> None:
        self.handle = handle
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {handle.api_key}"

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.post(self.handle.base_url + path, json=body, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.handle.base_url + path, timeout=10, **kwargs)

    def create(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.post(CREATE, text_body() if body is None else body).json()

    def record(self, task_id: str) -> dict[str, Any]:
        return self.get("/api/v1/jobs/recordInfo", params={"taskId": task_id}).json()

    def wait_final(self, task_id: str, timeout: float = 15.0) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            data = self.record(task_id)["data"]
            return data if data["state"] in ("success", "fail") else None

        return eventually(final, timeout=timeout, failure=f"task {task_id} never ended")


@pytest.fixture
def api(kie_simulator: SimulatorHandle) -> Api:
    return Api(kie_simulator)


def probe(data: bytes) -> dict[str, Any]:
    with av.open(io.BytesIO(data), "r") as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        first = next(container.decode(video=0)).to_image()
        assert container.duration is not None  # an MP4 states its length
        return {
            "codec": video.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "size": (video.width, video.height),
            "duration": container.duration / 1_000_000,
            "audio": audio.codec_context.name if audio else None,
            "first_frame": first,
        }


def last_frame(data: bytes) -> Image.Image:
    with av.open(io.BytesIO(data), "r") as container:
        frame = None
        for frame in container.decode(video=0):  # noqa: B007 - the loop leaves the last frame
            pass
        assert frame is not None
        return frame.to_image()


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference, 0..255."""
    a, b = a.convert("L"), b.convert("L").resize(a.size)
    return sum(abs(x - y) for x, y in zip(a.tobytes(), b.tobytes(), strict=True)) / (
        a.width * a.height
    )


def png(size: tuple[int, int], color: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 8):  # stripes, so camera motion shows in the frames
        for y in range(size[1]):
            image.putpixel((x, y), (255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# --- rendering ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect_ratio", "size"), [("16:9", (160, 90)), ("9:16", (90, 160)), ("1:1", (160, 160))]
)
@pytest.mark.parametrize("sound", [False, True])
def test_text_to_video_is_h264_at_the_requested_shape_with_audio_only_when_asked(
    aspect_ratio, size, sound
):
    clip = probe(
        render_text_to_video(
            "a red fox", duration=5, aspect_ratio=aspect_ratio, sound=sound, settings=SMALL
        )
    )
    assert (clip["codec"], clip["pix_fmt"], clip["size"]) == ("h264", "yuv420p", size)
    assert clip["duration"] == pytest.approx(5, abs=0.15)
    assert clip["audio"] == ("aac" if sound else None)


def test_ten_second_clip_lasts_ten_seconds():
    data = render_text_to_video("ten", duration=10, aspect_ratio="16:9", sound=True, settings=SMALL)
    assert probe(data)["duration"] == pytest.approx(10, abs=0.15)


def test_text_scene_moves():
    data = render_text_to_video(
        "moving words", duration=5, aspect_ratio="16:9", sound=False, settings=SMALL
    )
    assert difference(probe(data)["first_frame"], last_frame(data)) > 5


def test_image_to_video_keeps_the_image_shape_and_moves_the_camera():
    data = render_image_to_video(
        png((300, 600)), duration=5, sound=False, settings=SMALL, motion_seed="zoom"
    )
    clip = probe(data)
    assert clip["size"] == (80, 160)
    assert difference(clip["first_frame"], last_frame(data)) > 2


def test_image_to_video_shows_the_image():
    data = render_image_to_video(
        png((320, 180), (10, 200, 30)), duration=5, sound=True, settings=SMALL, motion_seed="x"
    )
    red, green, blue = (
        probe(data)["first_frame"].resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    )
    assert green > red and green > blue


def test_image_to_video_refuses_bytes_that_are_not_an_image():
    with pytest.raises(RenderError):
        render_image_to_video(
            b"\x89PNG\r\n\x1a\n garbage", duration=5, sound=False, settings=SMALL, motion_seed="x"
        )


def test_frame_sizes_are_even():
    width, height = frame_size(333, 101, 321)
    assert width % 2 == 0 and height % 2 == 0
    assert (width, height) == (320, 98)


# --- the HTTP contract --------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_the_bearer_key_is_checked(kie_simulator, key):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = requests.get(
        kie_simulator.base_url + "/api/v1/chat/credit", headers=headers, timeout=5
    )
    assert response.json()["code"] == 401
    assert kie_simulator.stats()["rejected"] == {"credit:401": 1}


@pytest.mark.parametrize(
    "body",
    [
        text_body(duration=5),  # a number, not the string "5"
        text_body(duration="7"),
        text_body(prompt=""),
        text_body(prompt="x" * 1001),
        text_body(sound="true"),
        text_body(aspect_ratio="4:3"),
        text_body(model="kling-2.5/text-to-video"),
        text_body(callBackUrl="ftp://example.com"),
        {
            "model": "kling-2.6/image-to-video",
            "input": {
                "prompt": "p",
                "sound": False,
                "duration": "5",
                "image_urls": "https://x.test/a.png",
            },
        },
        {
            "model": "kling-2.6/image-to-video",
            "input": {
                "prompt": "p",
                "sound": False,
                "duration": "5",
                "image_urls": ["https://x.test/a.png"],
                "aspect_ratio": "16:9",
            },
        },
        [],
    ],
)
def test_invalid_create_bodies_are_refused_with_422(api, kie_simulator, body):
    answer = api.create(body)
    assert answer["code"] == 422 and answer["msg"]
    assert kie_simulator.stats()["tasks_created"] == 0


def test_a_body_that_is_not_json_is_422(api):
    response = api.session.post(api.handle.base_url + CREATE, data=b"{oops", timeout=5)
    assert response.json()["code"] == 422


def test_a_task_waits_queues_then_generates_as_its_time_passes():
    task = SimTask(task_id="t", body=text_body(), price=55)
    start = task.created_monotonic
    states = [task.state(1.0, start + elapsed) for elapsed in (0.0, 0.2, 0.5, 5.0)]
    assert states == ["waiting", "queuing", "generating", "generating"]  # until it finishes


def test_task_goes_through_every_state_and_reports_the_documented_fields(kie_simulator, api):
    answer = api.create(text_body(callBackUrl="http://127.0.0.1:9/never"))
    assert answer["code"] == 200 and answer["msg"] == "success"
    task_id = answer["data"]["taskId"]
    seen = []
    while not seen or seen[-1] not in ("success", "fail"):
        state = api.record(task_id)["data"]["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.005)
    # In order, and never back; which ones a poll catches depends on how fast it comes.
    order = ["waiting", "queuing", "generating", "success"]
    assert seen == sorted(seen, key=order.index) and seen[-1] == "success"

    data = api.record(task_id)["data"]
    assert json.loads(data["param"]) == text_body(callBackUrl="http://127.0.0.1:9/never")
    assert isinstance(data["resultJson"], str)
    url = json.loads(data["resultJson"])["resultUrls"][0]
    assert data["createTime"] <= data["completeTime"] and data["costTime"] >= 250
    response = requests.get(url, timeout=5)
    assert response.headers["Content-Type"] == "video/mp4"
    assert probe(response.content)["duration"] == pytest.approx(5, abs=0.15)


@pytest.mark.parametrize(
    ("duration", "sound", "price"),
    [("5", False, 55), ("5", True, 110), ("10", False, 110), ("10", True, 220)],
)
def test_credits_drop_by_the_price(api, duration, sound, price):
    before = api.get("/api/v1/chat/credit").json()["data"]
    assert api.create(text_body(duration=duration, sound=sound))["code"] == 200
    assert api.get("/api/v1/chat/credit").json()["data"] == before - price


def test_task_ids_stay_unique_under_concurrent_creates(kie_simulator, api):
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: Api(kie_simulator).create(), range(24)))
    ids = [answer["data"]["taskId"] for answer in answers]
    assert len(set(ids)) == 24
    assert kie_simulator.stats()["create_task_calls"] == 24


def test_image_to_video_fetches_an_uploaded_image(api):
    upload = api.session.post(
        api.handle.base_url + "/api/file-stream-upload",
        files={"file": ("wide.png", png((400, 100)), "image/png")},
        data={"uploadPath": "tests/images", "fileName": "wide.png"},
        timeout=5,
    ).json()
    assert upload["code"] == 200
    assert (
        upload["data"]["mimeType"] == "image/png" and upload["data"]["uploadPath"] == "tests/images"
    )
    body = {
        "model": "kling-2.6/image-to-video",
        "input": {
            "prompt": "pan",
            "image_urls": [upload["data"]["downloadUrl"]],
            "sound": True,
            "duration": "5",
        },
    }
    data = api.wait_final(api.create(body)["data"]["taskId"])
    assert data["state"] == "success"
    clip = probe(requests.get(json.loads(data["resultJson"])["resultUrls"][0], timeout=5).content)
    assert clip["size"] == (160, 40) and clip["audio"] == "aac"


def test_image_to_video_fetches_a_foreign_image_over_http(api):
    image = png((200, 200))
    server = _serve_once(image)
    body = {
        "model": "kling-2.6/image-to-video",
        "input": {"prompt": "zoom", "image_urls": [server], "sound": False, "duration": "5"},
    }
    assert api.wait_final(api.create(body)["data"]["taskId"])["state"] == "success"


def test_an_unfetchable_image_fails_the_task_and_refunds(api):
    before = api.get("/api/v1/chat/credit").json()["data"]
    body = {
        "model": "kling-2.6/image-to-video",
        "input": {
            "prompt": "zoom",
            "image_urls": [f"http://127.0.0.1:{_free_port()}/gone.png"],
            "sound": False,
            "duration": "5",
        },
    }
    data = api.wait_final(api.create(body)["data"]["taskId"])
    assert data["state"] == "fail" and data["failCode"] and data["failMsg"]
    assert api.get("/api/v1/chat/credit").json()["data"] == before


def test_upload_without_a_file_is_422(api):
    response = api.session.post(
        api.handle.base_url + "/api/file-stream-upload",
        data={"uploadPath": "x"},
        files={"other": ("a", b"1")},
        timeout=5,
    )
    assert response.json()["code"] == 422


def test_multipart_parser_keeps_binary_content_intact():
    content = bytes(range(256)) * 4 + b"\r\n--almost-boundary\r\n"
    prepared = requests.Request(
        "POST", "http://x.test", files={"file": ("a.bin", content)}, data={"uploadPath": "p"}
    ).prepare()
    form = parse_multipart(prepared.body, prepared.headers["Content-Type"])
    assert form["file"] == ("a.bin", content)
    assert form["uploadPath"] == (None, b"p")


def test_unknown_path_is_404(kie_simulator):
    assert requests.get(kie_simulator.base_url + "/api/v1/nope", timeout=5).status_code == 404


# --- expiring files -----------------------------------------------------------------------------


@pytest.fixture
def short_lived_simulator():
    config = SimulatorConfig(
        port=0,
        api_key="k",
        task_seconds=0.1,
        result_ttl=3,  # long enough to fetch on a slow machine, short enough to wait out
        download_url_ttl=3,
        render=SMALL,
        allow_control=True,
    )
    with KieSimulator(config) as simulator:
        yield simulator


def test_result_urls_expire_but_a_fresh_link_can_be_had(short_lived_simulator):
    base = short_lived_simulator.base_url
    session = requests.Session()
    session.headers["Authorization"] = "Bearer k"
    task_id = session.post(base + CREATE, json=text_body(), timeout=5).json()["data"]["taskId"]

    def done() -> dict[str, Any] | None:
        record = session.get(
            base + "/api/v1/jobs/recordInfo", params={"taskId": task_id}, timeout=5
        )
        data = record.json()["data"]
        return data if data["state"] == "success" else None

    data = eventually(done, failure="the task never succeeded")
    url = json.loads(data["resultJson"])["resultUrls"][0]
    assert requests.get(url, timeout=5).status_code == 200
    # The simulator's links live 3 s: its own clock, which the test cannot move.
    eventually(lambda: requests.get(url, timeout=5).status_code == 404, timeout=10)
    fresh = session.post(base + "/api/v1/common/download-url", json={"url": url}, timeout=5).json()
    assert fresh["code"] == 200
    assert requests.get(fresh["data"], timeout=5).status_code == 200
    eventually(lambda: requests.get(fresh["data"], timeout=5).status_code == 404, timeout=10)


def test_an_expired_result_fault_hands_out_a_dead_link_that_download_url_renews(kie_simulator, api):
    kie_simulator.set_faults(expired_result={"rate": 1, "times": 1})
    data = api.wait_final(api.create()["data"]["taskId"])
    url = json.loads(data["resultJson"])["resultUrls"][0]
    assert requests.get(url, timeout=5).status_code == 404
    fresh = api.post("/api/v1/common/download-url", {"url": url}).json()["data"]
    assert requests.get(fresh, timeout=5).status_code == 200
    assert kie_simulator.stats()["faults"]["expired_result"] == 1


def test_a_slow_result_fault_delays_the_file(kie_simulator, api):
    kie_simulator.set_faults(slow_result=1, slow_seconds=0.5)
    data = api.wait_final(api.create()["data"]["taskId"])
    url = json.loads(data["resultJson"])["resultUrls"][0]
    started = time.monotonic()
    assert requests.get(url, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.5


def test_the_task_listing_names_each_task_and_its_callback(kie_simulator, api):
    task_id = api.create(text_body(callBackUrl="http://127.0.0.1:9/cb/1"))["data"]["taskId"]
    api.wait_final(task_id)
    assert kie_simulator.tasks() == [
        {
            "taskId": task_id,
            "callBackUrl": "http://127.0.0.1:9/cb/1",
            "state": "success",
            "credits": 55,
        }
    ]


def test_download_url_refuses_foreign_urls(api):
    assert (
        api.post("/api/v1/common/download-url", {"url": "https://example.com/x.mp4"}).json()["code"]
        == 422
    )


# --- callbacks ----------------------------------------------------------------------------------


def test_callback_has_the_documented_shape_and_signature(kie_simulator, api, callback_sink):
    task_id = api.create(text_body(callBackUrl=callback_sink.url, sound=True))["data"]["taskId"]
    (callback,) = callback_sink.wait_for(1)
    body = json.loads(callback.body)
    assert body["code"] == 200 and body["msg"]
    data = body["data"]
    assert data["taskId"] == task_id and data["state"] == "success"
    assert json.loads(data["resultJson"])["resultUrls"]
    assert data.get("consumeCredits", data.get("creditsConsumed")) == 110
    assert data["remainedCredits"] == kie_simulator.stats()["credits"]
    timestamp = callback.headers["X-Webhook-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 30
    expected = base64.b64encode(
        hmac.new(
            kie_simulator.hmac_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert callback.headers["X-Webhook-Signature"] == expected


def test_credit_field_alternates_by_default(kie_simulator, api, callback_sink):
    for _ in range(2):
        api.create(text_body(callBackUrl=callback_sink.url))
    keys = [
        set(json.loads(c.body)["data"]) & {"consumeCredits", "creditsConsumed"}
        for c in callback_sink.wait_for(2)
    ]
    assert sorted(k for key in keys for k in key) == ["consumeCredits", "creditsConsumed"]


@pytest.mark.parametrize("field", ["consumeCredits", "creditsConsumed"])
def test_credit_field_can_be_fixed(kie_simulator, api, callback_sink, field):
    kie_simulator.set_faults(credit_field=field)
    for _ in range(2):
        api.create(text_body(callBackUrl=callback_sink.url))
    assert all(field in json.loads(c.body)["data"] for c in callback_sink.wait_for(2))


def test_failed_generation_callback(kie_simulator, api, callback_sink):
    kie_simulator.set_faults(generation_failure=1.0)
    api.create(text_body(callBackUrl=callback_sink.url))
    (callback,) = callback_sink.wait_for(1)
    body = json.loads(callback.body)
    assert body["code"] == 501
    assert body["data"]["state"] == "fail" and body["data"]["failCode"] == "501"
    assert body["data"].get("consumeCredits", body["data"].get("creditsConsumed")) == 0
    assert kie_simulator.stats()["tasks_failed"] == 1


@pytest.mark.parametrize("mode", ["invalid", "stale", "missing"])
def test_callback_signature_can_be_spoiled(kie_simulator, api, callback_sink, mode):
    kie_simulator.set_faults(callback_signature=mode)
    task_id = api.create(text_body(callBackUrl=callback_sink.url))["data"]["taskId"]
    (callback,) = callback_sink.wait_for(1)
    headers = callback.headers
    if mode == "missing":
        assert "X-Webhook-Signature" not in headers
        return
    timestamp = headers["X-Webhook-Timestamp"]
    honest = base64.b64encode(
        hmac.new(
            kie_simulator.hmac_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    if mode == "invalid":
        assert headers["X-Webhook-Signature"] != honest
    else:
        assert headers["X-Webhook-Signature"] == honest and time.time() - int(timestamp) > 3000


def test_lost_callbacks_are_never_sent(kie_simulator, api, callback_sink):
    kie_simulator.set_faults(lost_callback=1.0)
    api.wait_final(api.create(text_body(callBackUrl=callback_sink.url))["data"]["taskId"])
    stats = kie_simulator.wait_for_stats(lambda s: s["callbacks_lost"] == 1)
    assert stats["callbacks_sent"] == 0 and callback_sink.received == []


def test_duplicated_callbacks_are_sent_twice(kie_simulator, api, callback_sink):
    kie_simulator.set_faults(duplicate_callback=1.0)
    task_id = api.create(text_body(callBackUrl=callback_sink.url))["data"]["taskId"]
    received = callback_sink.wait_for(2)
    assert [json.loads(c.body)["data"]["taskId"] for c in received] == [task_id, task_id]
    assert (
        kie_simulator.wait_for_stats(lambda s: s["callbacks_duplicated"] == 1)["callbacks_sent"]
        == 2
    )


def test_early_callback_arrives_before_the_create_answer(kie_simulator, api, callback_sink):
    kie_simulator.set_faults(early_callback=1.0)
    answer = api.create(text_body(callBackUrl=callback_sink.url))
    answered_at = time.monotonic()
    assert len(callback_sink.received) == 1
    assert callback_sink.received[0].received_at < answered_at
    assert json.loads(callback_sink.received[0].body)["data"]["taskId"] == answer["data"]["taskId"]


def test_callback_receiver_errors_are_counted(kie_simulator, api, callback_sink):
    callback_sink.answer_status = 500
    api.create(text_body(callBackUrl=callback_sink.url))
    stats = kie_simulator.wait_for_stats(lambda s: s["callback_errors"] == 1)
    assert stats["recent_callbacks"][-1]["status"] == 500


# --- request faults -----------------------------------------------------------------------------


def test_rate_limit_accepts_n_per_window_then_answers_429_with_http_200(kie_simulator, api):
    # Wide enough that five requests on a loaded machine land inside one window.
    kie_simulator.set_faults(rate_limit=3, rate_window=3)
    codes = [api.post(CREATE, text_body()) for _ in range(5)]
    assert [r.status_code for r in codes] == [200] * 5
    assert [r.json()["code"] for r in codes] == [200, 200, 200, 429, 429]
    assert "Retry-After" not in codes[-1].headers
    time.sleep(3.05)  # the window runs on the simulator's own clock, out of the test's reach
    assert api.create()["code"] == 200
    stats = kie_simulator.stats()
    assert (
        stats["create_task_calls"],
        stats["tasks_created"],
        stats["rejected"]["createTask:429"],
    ) == (6, 4, 2)


def test_server_errors_are_http_500_and_do_nothing(kie_simulator, api):
    kie_simulator.set_faults(server_error=1.0, retry_after=2.5)
    response = api.post(CREATE, text_body())
    assert (response.status_code, response.json()["code"], response.headers["Retry-After"]) == (
        500,
        500,
        "2.5",
    )
    assert kie_simulator.stats()["tasks_created"] == 0


def test_maintenance_is_455(api, kie_simulator):
    kie_simulator.set_faults(maintenance=1.0)
    assert api.get("/api/v1/chat/credit").json()["code"] == 455


def test_fault_rates_are_fractions(kie_simulator, api):
    kie_simulator.set_faults(server_error=0.5)
    codes = [api.get("/api/v1/chat/credit").status_code for _ in range(200)]
    assert 50 < codes.count(500) < 150


def test_fault_times_and_endpoints_limit_a_fault(kie_simulator, api):
    kie_simulator.set_faults(maintenance={"rate": 1, "times": 2, "endpoints": ["credit"]})
    assert api.create()["code"] == 200  # not an endpoint the fault covers
    codes = [api.get("/api/v1/chat/credit").json()["code"] for _ in range(3)]
    assert codes == [455, 455, 200]


def test_malformed_json_still_does_the_work(kie_simulator, api):
    kie_simulator.set_faults(malformed_json=1.0)
    response = api.post(CREATE, text_body())
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert kie_simulator.stats()["tasks_created"] == 1


def test_slow_answers_are_late(kie_simulator, api):
    kie_simulator.set_faults(slow=1.0, slow_seconds=0.3)
    started = time.monotonic()
    assert api.get("/api/v1/chat/credit").json()["code"] == 200
    assert time.monotonic() - started >= 0.3


def test_disconnect_closes_without_an_answer_after_doing_the_work(kie_simulator, api):
    kie_simulator.set_faults(disconnect=1.0)
    with pytest.raises(requests.ConnectionError):
        api.post(CREATE, text_body())
    assert kie_simulator.stats()["tasks_created"] == 1


def test_out_of_credits(kie_simulator, api):
    kie_simulator.set_faults(out_of_credits=True)
    assert api.create()["code"] == 402
    kie_simulator.set_faults(out_of_credits=False)
    kie_simulator.set_credits(100)
    assert api.create(text_body(duration="10"))["code"] == 402  # 110 > 100
    assert api.create()["code"] == 200


def test_forced_codes(kie_simulator, api):
    kie_simulator.set_faults(forced_codes={"createTask": 433, "recordInfo": 505})
    assert api.create()["code"] == 433
    assert api.record("task_kling-2.6_1")["code"] == 505
    assert api.get("/api/v1/chat/credit").json()["code"] == 200


@pytest.mark.parametrize(
    ("setting", "keys"),
    [("msg", {"msg"}), ("message", {"message"}), ("alternate", {"msg", "message"})],
)
def test_message_field_spelling(kie_simulator, api, setting, keys):
    kie_simulator.set_faults(message_field=setting)
    seen = {
        key
        for _ in range(4)
        for key in api.get("/api/v1/chat/credit").json()
        if key in ("msg", "message")
    }
    assert seen == keys


# --- control endpoint ---------------------------------------------------------------------------


def test_control_endpoint_is_off_unless_allowed():
    with KieSimulator(SimulatorConfig(port=0)) as simulator:
        for method, path in (
            ("GET", "/_control"),
            ("POST", "/_control"),
            ("GET", "/_control/stats"),
            ("GET", "/_control/tasks"),
            ("POST", "/_control/reset"),
        ):
            assert (
                requests.request(method, simulator.base_url + path, json={}, timeout=5).status_code
                == 404
            )


def test_control_rejects_unknown_or_bad_faults(kie_simulator):
    for patch in (
        {"no_such_fault": 1},
        {"server_error": 2},
        {"credit_field": "coins"},
        {"forced_codes": {"x": 500}},
        [],
    ):
        response = requests.post(kie_simulator.base_url + "/_control", json=patch, timeout=5)
        assert response.status_code == 400, patch


def test_reset_restores_faults_credits_and_counters(kie_simulator, api):
    kie_simulator.set_faults(maintenance=1.0)
    kie_simulator.set_credits(5)
    api.get("/api/v1/chat/credit")
    kie_simulator.reset()
    assert kie_simulator.faults()["maintenance"]["rate"] == 0
    stats = kie_simulator.stats()
    assert stats["requests"] == {} and stats["credits"] == 100_000


def test_faults_parse_from_json_shapes():
    faults = Faults().updated(
        {
            "slow": 0.25,
            "disconnect": {"rate": 1, "times": 3, "endpoints": ["credit"]},
            "server_error": None,
        }
    )
    assert faults.slow == FaultRule(rate=0.25)
    assert faults.disconnect == FaultRule(rate=1.0, times=3, endpoints=frozenset({"credit"}))
    assert Faults().updated(faults.to_json()) == faults


def test_command_line_flags_become_faults():
    from videos.management.commands.kie_simulator import Command

    parser = Command().create_parser("manage.py", "kie_simulator")
    options = vars(
        parser.parse_args(
            [
                "--port",
                "0",
                "--rate-limit",
                "20",
                "--server-error-rate",
                "0.1",
                "--lost-callback-rate",
                "0.5",
                "--force-code",
                "createTask=433",
                "--credit-field",
                "creditsConsumed",
                "--out-of-credits",
            ]
        )
    )
    faults = Faults().updated(Command._fault_patch(options))
    assert (
        faults.rate_limit == 20
        and faults.server_error.rate == 0.1
        and faults.lost_callback.rate == 0.5
    )
    assert faults.forced_codes == {"createTask": 433}
    assert faults.credit_field == "creditsConsumed" and faults.out_of_credits


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def _serve_once(content: bytes) -> str:
    """An image on another host:port, to make the simulator fetch it over HTTP."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/image.png"


def test_instant_render_renders_each_shape_of_clip_once(monkeypatch):
    from videos.simulator import rendering, service, tasks

    simulator = service.SimulatedKie(
        SimulatorConfig(port=0, instant_render=True, render=RenderSettings(long_side=64, fps=4))
    )
    renders: list[str] = []
    real = rendering.render_text_to_video

    def counted(*args: Any, **kwargs: Any) -> bytes:
        renders.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(rendering, "render_text_to_video", counted)
    body = {
        "model": tasks.TEXT_TO_VIDEO_MODEL,
        "input": {"prompt": "p", "sound": False, "aspect_ratio": "1:1", "duration": "5"},
    }
    try:
        clips = [
            simulator._render(tasks.SimTask(task_id=f"t{n}", body=body, price=55)) for n in range(3)
        ]
    finally:
        simulator.close()
    assert len(renders) == 1
    assert clips[0] == clips[1] == clips[2]
