"""The official Kling API client, against the simulator's Kling routes over real HTTP."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from tests.fixtures.waiting import eventually
from tests.providers.test_kie import image_bytes
from videos.providers.base import (
    Action,
    CallbackMalformed,
    GenerationRequest,
    InvalidRequest,
    ProviderError,
    TaskState,
)
from videos.providers.kie import KieProvider
from videos.providers.kling import KlingProvider, TokenSigner, build_payload

TEXT = GenerationRequest(
    kind="text_to_video", prompt="A fox in the snow", duration=5, sound=True, aspect_ratio="9:16"
)


def final(provider: KlingProvider, task_id: str, kind: str = "text_to_video"):
    def ended():
        status = provider.get_task(task_id, kind=kind)
        return status if status.state.is_final else None

    return eventually(ended, timeout=15, failure=f"task {task_id} never ended")


def test_the_token_has_the_documented_claims_and_header():
    signer = TokenSigner("access", "secret", clock=lambda: 1_000_000.0)
    token = signer.token()
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(
        token, "secret", algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False}
    )
    assert claims == {"iss": "access", "exp": 1_000_000 + 1800, "nbf": 1_000_000 - 5}


def test_the_token_is_made_again_before_it_expires():
    now = [1_000_000.0]
    signer = TokenSigner("access", "secret", clock=lambda: now[0])
    first = signer.token()
    now[0] += 60
    assert signer.token() == first  # still fresh: kept
    now[0] += 1800 - 60 - 299  # within five minutes of expiry
    assert signer.token() != first


def test_payloads_match_the_contract():
    payload = build_payload(
        GenerationRequest(**{**TEXT.__dict__, "negative_prompt": "blur", "mode": "pro"}),
        model_name="kling-v2-6",
        callback_url="https://example.com/cb",
        reference="job-1",
    )
    assert payload == {
        "model_name": "kling-v2-6",
        "prompt": "A fox in the snow",
        "negative_prompt": "blur",
        "duration": "5",
        "mode": "pro",
        "sound": "on",
        "aspect_ratio": "9:16",
        "callback_url": "https://example.com/cb",
        "external_task_id": "job-1",
    }
    data = image_bytes("PNG")
    image = GenerationRequest(
        kind="image_to_video", prompt="pan", duration=10, sound=False, image_data=data
    )
    payload = build_payload(image, model_name="m", callback_url=None, reference=None)
    assert base64.b64decode(payload["image"]) == data  # bare base64, no data: prefix
    assert payload["mode"] == "std" and "aspect_ratio" not in payload


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"negative_prompt": "x" * 2501}, "negative_prompt"), ({"mode": "ultra"}, "mode")],
)
def test_kling_options_are_checked(changes, field):
    provider = KlingProvider("a", "s")
    with pytest.raises(InvalidRequest) as refused:
        provider.validate(GenerationRequest(**{**TEXT.__dict__, **changes}))
    assert field in refused.value.errors


def test_kie_refuses_kling_options_with_a_clear_message():
    with pytest.raises(InvalidRequest) as refused:
        KieProvider("key").validate(
            GenerationRequest(**{**TEXT.__dict__, "negative_prompt": "blur", "mode": "pro"})
        )
    assert set(refused.value.errors) == {"negative_prompt", "mode"}
    assert "official Kling API" in refused.value.errors["mode"]


def test_webp_is_refused_before_anything_is_sent():
    request = GenerationRequest(
        kind="image_to_video", prompt="p", duration=5, sound=False, image_data=image_bytes("WEBP")
    )
    with pytest.raises(InvalidRequest, match="JPEG or PNG"):
        KlingProvider("a", "s").validate(request)


def test_text_and_image_tasks_run_to_success(kling_provider):
    task_id = kling_provider.create_task(TEXT, callback_url=None, reference="job-t")
    status = final(kling_provider, task_id)
    assert status.state is TaskState.SUCCESS and status.result_urls
    assert status.external_task_id == "job-t"
    image = GenerationRequest(
        kind="image_to_video", prompt="pan", duration=5, sound=False, image_data=image_bytes("JPEG")
    )
    task_id = kling_provider.create_task(image, callback_url=None, reference="job-i")
    assert final(kling_provider, task_id, "image_to_video").state is TaskState.SUCCESS
    # Without the kind, both query paths are tried.
    assert kling_provider.get_task(task_id).task_id == task_id


def test_a_task_is_found_by_its_reference_and_a_missing_one_is_none(kling_provider):
    task_id = kling_provider.create_task(TEXT, callback_url=None, reference="job-9")
    assert kling_provider.find_task("job-9", kind="text_to_video").task_id == task_id
    assert kling_provider.find_task("job-10", kind="text_to_video") is None


def test_a_reference_sent_twice_is_an_unknown_outcome_not_a_second_task(
    kie_simulator, kling_provider
):
    kling_provider.create_task(TEXT, callback_url=None, reference="job-2")
    with pytest.raises(ProviderError) as refused:
        kling_provider.create_task(TEXT, callback_url=None, reference="job-2")
    assert refused.value.action is Action.UNKNOWN
    assert kie_simulator.stats()["tasks_created"] == 1


def test_an_expired_token_is_made_again_once(kie_simulator, kling_provider):
    kie_simulator.set_faults(expired_token={"rate": 1, "times": 1})
    task_id = kling_provider.create_task(TEXT, callback_url=None, reference="job-e")
    assert task_id
    kie_simulator.set_faults(expired_token=1)  # every token refused: it is not the clock
    with pytest.raises(ProviderError) as refused:
        kling_provider.get_task(task_id, kind="text_to_video")
    assert refused.value.action is Action.PAUSE and refused.value.code == 1004


def test_wrong_keys_pause_and_no_secret_is_shown(kie_simulator):
    provider = kie_simulator.kling_provider(secret_key="not-the-secret-key")
    with pytest.raises(ProviderError) as refused:
        provider.create_task(TEXT, callback_url=None)
    assert refused.value.action is Action.PAUSE
    assert "not-the-secret-key" not in str(refused.value) + repr(provider)


@pytest.mark.parametrize(
    ("code", "action"),
    [(1102, Action.PAUSE), (1302, Action.RETRY), (500, Action.RETRY), (422, Action.FAIL)],
)
def test_refusals_say_what_to_do(kie_simulator, kling_provider, code, action):
    kie_simulator.set_faults(forced_codes={"createTask": code})
    with pytest.raises(ProviderError) as refused:
        kling_provider.create_task(TEXT, callback_url=None)
    assert refused.value.action is action


def test_a_lost_create_answer_is_unknown(kie_simulator, kling_provider):
    kie_simulator.set_faults(disconnect={"rate": 1, "times": 1, "endpoints": ["createTask"]})
    with pytest.raises(ProviderError) as refused:
        kling_provider.create_task(TEXT, callback_url=None, reference="job-l")
    assert refused.value.action is Action.UNKNOWN
    assert kling_provider.find_task("job-l", kind="text_to_video") is not None


def test_callbacks_are_read_bare_or_wrapped(kie_simulator, kling_provider, callback_sink):
    task_id = kling_provider.create_task(TEXT, callback_url=callback_sink.url, reference="job-c")
    received = callback_sink.wait_for(1)[0]
    status = kling_provider.parse_callback(received.body, received.headers)
    assert (status.task_id, status.state, status.external_task_id) == (
        task_id,
        TaskState.SUCCESS,
        "job-c",
    )
    wrapped = json.dumps({"code": 0, "message": "ok", "data": json.loads(received.body)})
    assert kling_provider.parse_callback(wrapped.encode(), {}).task_id == task_id
    with pytest.raises(CallbackMalformed):
        kling_provider.parse_callback(b'{"task_status": "succeed"}', {})


def test_a_task_id_that_is_no_utf8_is_refused():
    # JSON's escape for a lone surrogate: no UTF-8 encoder, hash or database takes it.
    with pytest.raises(CallbackMalformed):
        KlingProvider("a", "s").parse_callback(
            b'{"task_id": "\\ud800", "task_status": "failed"}', {}
        )
