"""The official Kling API's shape, for the simulator: routes, JWT check, request rules, answers.

Tasks made here are the same `SimTask`s as kie.ai's (one account, one renderer, one set of
faults): their createTask body is kept in kie.ai's form so rendering and pricing read one shape,
and the Kling body beside it. Kling's answers are `{code, message, request_id, data}` with
`code` 0 for success and a meaningful HTTP status.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

import jwt

from videos.simulator import tasks

CREATE_PATH = re.compile(r"^/v1/videos/(text2video|image2video)$")
QUERY_PATH = re.compile(r"^/v1/videos/(text2video|image2video)/([^/]+)$")
KINDS = {"text2video": tasks.TEXT_TO_VIDEO_MODEL, "image2video": tasks.IMAGE_TO_VIDEO_MODEL}

_FIELDS = {
    "text2video": {"prompt", "duration", "mode", "sound", "aspect_ratio"},
    "image2video": {"prompt", "duration", "mode", "sound", "image"},
}
_OPTIONAL = {"model_name", "negative_prompt", "callback_url", "external_task_id", "cfg_scale"}

# kie.ai body codes the shared faults speak in -> (HTTP status, Kling code).
FROM_KIE_CODE = {
    401: (401, 1000),
    402: (429, 1102),
    404: (404, 1203),
    422: (400, 1201),
    429: (429, 1302),
    433: (429, 1103),
    455: (503, 5001),
    500: (500, 5000),
    501: (400, 1300),
    505: (400, 1202),
}

TOKEN_EXPIRED = 1004
STATUS_BY_STATE = {
    "waiting": "submitted",
    "queuing": "submitted",
    "generating": "processing",
    "success": "succeed",
    "fail": "failed",
}


def kling_status_and_code(code: int, status: int) -> tuple[int, int]:
    """The HTTP status and Kling code for a refusal given as a kie.ai code or a Kling one."""
    if code >= 1000:
        if code < 1100:
            return 401, code
        if code < 1200 or code in (1302, 1303, 1304):
            return 429, code
        if code >= 5000:
            return 500, code
        return (404 if code == 1203 else 400), code
    return FROM_KIE_CODE.get(code, (status if status >= 400 else 400, code))


def body(code: int, message: str, data: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": str(uuid.uuid4()), "data": data}


def token_error(header: str | None, *, access_key: str, secret_key: str) -> tuple[int, str] | None:
    """(Kling code, message) when the bearer token would be refused, else None."""
    if not header or not header.startswith("Bearer "):
        return 1001, "Authorization is empty"
    token = header.removeprefix("Bearer ").strip()
    try:
        if jwt.get_unverified_header(token).get("typ") != "JWT":
            return 1002, "Authorization is invalid: typ must be JWT"
        jwt.decode(
            token,
            secret_key,
            algorithms=["HS256"],
            issuer=access_key,
            options={"require": ["iss", "exp", "nbf"]},
        )
    except jwt.ExpiredSignatureError:
        return TOKEN_EXPIRED, "Authorization is expired"
    except jwt.ImmatureSignatureError:
        return 1003, "Authorization is not yet valid"
    except jwt.InvalidTokenError:
        return 1000, "Authorization failed"
    return None


def create_request(kind: str, payload: Any) -> tuple[dict[str, Any], bytes | None] | str:
    """The task body in kie.ai's form and the inline image, or why Kling would refuse (1201)."""
    if not isinstance(payload, dict):
        return "Request body must be a JSON object"
    expected = _FIELDS[kind]
    unexpected = set(payload) - expected - _OPTIONAL
    if unexpected:
        return f"Unknown parameters: {', '.join(sorted(unexpected))}"
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= 2500:
        return "prompt must be a string of 1 to 2500 characters"
    negative = payload.get("negative_prompt", "")
    if not isinstance(negative, str) or len(negative) > 2500:
        return "negative_prompt must be a string of at most 2500 characters"
    if payload.get("duration", "5") not in ("5", "10"):
        return 'duration must be "5" or "10"'
    if payload.get("mode", "std") not in ("std", "pro"):
        return 'mode must be "std" or "pro"'
    if payload.get("sound", "off") not in ("on", "off"):
        return 'sound must be "on" or "off"'
    callback = payload.get("callback_url")
    if callback is not None and (
        not isinstance(callback, str) or not callback.startswith(("http://", "https://"))
    ):
        return "callback_url must be an http(s) URL"
    external = payload.get("external_task_id")
    if external is not None and (not isinstance(external, str) or not external):
        return "external_task_id must be a non-empty string"
    task_input: dict[str, Any] = {
        "prompt": prompt,
        "sound": payload.get("sound", "off") == "on",
        "duration": payload.get("duration", "5"),
    }
    image_data = None
    if kind == "text2video":
        ratio = payload.get("aspect_ratio", "16:9")
        if ratio not in ("1:1", "16:9", "9:16"):
            return 'aspect_ratio must be "1:1", "16:9" or "9:16"'
        task_input["aspect_ratio"] = ratio
    else:
        image = payload.get("image")
        if not isinstance(image, str) or not image:
            return "image is required"
        if image.startswith(("http://", "https://")):
            task_input["image_urls"] = [image]
        else:
            if image.startswith("data:"):
                return "image must be a URL or bare base64, without a data: prefix"
            try:
                image_data = base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                return "image is neither a URL nor base64"
            if not image_data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
                return "image must be a jpg or png"
            task_input["image_urls"] = []
    return (
        {"model": KINDS[kind], "callBackUrl": callback, "input": task_input},
        image_data,
    )


def task_data(task: tasks.SimTask, task_seconds: float) -> dict[str, Any]:
    """A task as the query answer's `data` (and a callback's body) shows it."""
    state = task.state(task_seconds)
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": STATUS_BY_STATE[state],
        "task_status_msg": (task.fail_message or "") if state == "fail" else "",
        "task_info": {"external_task_id": task.external_task_id} if task.external_task_id else {},
        "created_at": int(task.created_at * 1000),
        "updated_at": int((task.completed_at or task.created_at) * 1000),
    }
    if state == "success" and task.result_url:
        data["task_result"] = {
            "videos": [
                {"id": task.task_id, "url": task.result_url, "duration": task.input["duration"]}
            ]
        }
    return data
