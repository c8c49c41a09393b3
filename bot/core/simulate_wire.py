"""What trial mode's stand-in checks and answers like Novita: the request rules (a 400 with Novita's
reason for what Novita refuses), data URIs, and task-result documents in Novita's shape."""

from __future__ import annotations

import base64
import binascii
import math
import re

from . import video_models
from .novita import GenerationRequest, NovitaBadRequest

VIDEO_TTL_S = 3600
_DATA_URI = re.compile(r"data:image/(?:jpeg|png|webp);base64,(.*)", re.DOTALL)


def decode_image(name: str, uri: str | None) -> bytes | None:
    """A data URI's image bytes (None when not given); a 400 like Novita's when it isn't one."""
    if uri is None:
        return None
    match = _DATA_URI.fullmatch(uri)
    try:
        image = base64.b64decode(match.group(1), validate=True) if match else None
    except (binascii.Error, ValueError):
        image = None
    if not image:
        raise NovitaBadRequest(
            f"{name} must be a data:image/(jpeg|png|webp);base64 URI",
            status=400, reason="INVALID_IMAGE", operation="submit",
        )  # fmt: skip
    return image


def validate(request: GenerationRequest) -> None:
    """Refuse what Novita refuses, with its 400 error: the common fields, and per model what its endpoint
    accepts (no `end_image` on Hailuo 2.3, a first frame for the image-only endpoints)."""
    problem = None
    model = video_models.MODELS.get(request.model)
    has_image = request.image_data_uri is not None
    if model is None:
        problem = f"no such model {request.model!r}."
    elif model.image_required and not has_image:
        problem = f"image is required for {model.image_endpoint}."
    elif request.end_image_data_uri is not None and not model.last_frame:
        problem = f"end_image is not accepted by {model.endpoint(has_image).rsplit('/', 1)[-1]}."
    elif request.end_image_data_uri is not None and not has_image:
        problem = "end_image needs image (the first frame)."
    elif not 1 <= len(request.prompt) <= 2000:
        problem = f"prompt must be 1 to 2000 characters long (got {len(request.prompt)})."
    elif request.duration not in (6, 10):
        problem = f"duration must be 6 or 10 (got {request.duration!r})."
    elif request.resolution not in ("768P", "1080P"):
        problem = f"resolution must be 768P or 1080P (got {request.resolution!r})."
    elif request.resolution == "1080P" and request.duration != 6:
        problem = "1080P is only available for 6-second videos; use 768P for 10 seconds."
    if problem:
        raise NovitaBadRequest(problem, status=400, reason="INVALID_REQUEST_BODY", operation="submit")


def document(
    task_id: str,
    status: str,
    *,
    task_type: str = "MINIMAX_HAILUO_02",
    progress: float = 0,
    eta: float = 0,
    reason: str = "",
    video_url: str | None = None,
) -> dict[str, object]:
    """A task-result document shaped like Novita's (ttl as a string, as the real service sends it)."""
    videos = [{"video_url": video_url, "video_url_ttl": str(VIDEO_TTL_S), "video_type": "mp4"}]
    return {
        "task": {
            "task_id": task_id, "task_type": task_type, "status": status, "reason": reason,
            "eta": math.ceil(max(0.0, eta)), "progress_percent": 100 if video_url else progress,
        },
        "images": [],
        "videos": videos if video_url else [],
    }  # fmt: skip
