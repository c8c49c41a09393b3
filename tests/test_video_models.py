"""The model registry: endpoints per model and image, the refusals before anything is spent, a server's
models, and the aspect-ratio warning for a last frame."""

from __future__ import annotations

import pytest

from bot.core import video_models
from bot.core.mention_flags import parse_mention
from bot.core.novita import GenerationRequest
from bot.core.policy import GuildSettings


@pytest.mark.parametrize(
    ("model", "has_image", "path"),
    [
        ("hailuo-02", False, "/v3/async/minimax-hailuo-02"),
        ("hailuo-02", True, "/v3/async/minimax-hailuo-02"),
        ("hailuo-2.3", False, "/v3/async/minimax-hailuo-2.3-t2v"),
        ("hailuo-2.3", True, "/v3/async/minimax-hailuo-2.3-i2v"),
        ("hailuo-2.3-fast", True, "/v3/async/minimax-hailuo-2.3-fast-i2v"),
    ],
)
def test_each_model_and_image_presence_has_its_endpoint(model: str, has_image: bool, path: str) -> None:
    assert video_models.MODELS[model].endpoint(has_image) == path
    uri = "data:image/jpeg;base64,AAAA" if has_image else None
    assert GenerationRequest("x", model=model, image_data_uri=uri).endpoint == path
    assert video_models.by_endpoint(path) is video_models.MODELS[model]


def test_fast_has_no_text_endpoint() -> None:
    with pytest.raises(ValueError, match="needs a first frame"):
        video_models.MODELS["hailuo-2.3-fast"].endpoint(False)


@pytest.mark.parametrize(
    ("model", "image", "last", "allowed", "start"),
    [
        ("hailuo-02", False, True, None, "A last frame needs a first frame too"),
        ("hailuo-2.3", True, True, None, "Hailuo 2.3 can't use a last frame"),
        ("hailuo-2.3-fast", False, False, None, "Hailuo 2.3 Fast needs an image"),
        ("hailuo-2.3", False, False, ("hailuo-02",), "This server doesn't allow Hailuo 2.3."),
        ("sora", False, False, None, "There is no model called"),
    ],
)
def test_choices_a_model_cant_serve_get_one_sentence(
    model: str, image: bool, last: bool, allowed: tuple[str, ...] | None, start: str
) -> None:
    refusal = video_models.refusal(model, image, last, allowed)
    assert refusal is not None
    text = str(refusal)
    assert text.startswith(start)
    assert text.count(". ") <= 1


@pytest.mark.parametrize(
    ("model", "image", "last"),
    [
        ("hailuo-02", False, False),
        ("hailuo-02", True, True),
        ("hailuo-2.3", False, False),
        ("hailuo-2.3-fast", True, False),
    ],
)
def test_choices_a_model_can_serve_pass(model: str, image: bool, last: bool) -> None:
    assert video_models.refusal(model, image, last) is None


def test_a_servers_models_default_to_all_and_round_trip() -> None:
    def stored(raw: object) -> GuildSettings:
        return GuildSettings(1).changed({"allowed_models": raw})

    assert video_models.allowed_models(None) == video_models.MODEL_KEYS
    assert video_models.allowed_models(stored(None)) == video_models.MODEL_KEYS
    assert video_models.encode_allowed(video_models.MODEL_KEYS) is None  # later models come in too
    chosen = video_models.encode_allowed(["hailuo-2.3-fast", "hailuo-02"])
    assert video_models.allowed_models(stored(chosen)) == ("hailuo-02", "hailuo-2.3-fast")
    assert video_models.allowed_models(stored("not json")) == video_models.MODEL_KEYS


def test_the_default_model_follows_what_the_server_allows() -> None:
    assert video_models.default_model(video_models.MODEL_KEYS, has_image=False) == "hailuo-02"
    assert video_models.default_model(("hailuo-2.3", "hailuo-2.3-fast"), has_image=False) == "hailuo-2.3"
    assert video_models.default_model(("hailuo-2.3-fast", "hailuo-2.3"), has_image=True) == "hailuo-2.3-fast"


def test_a_last_frame_of_another_shape_gets_one_warning_sentence() -> None:
    assert video_models.aspect_warning((800, 600), (840, 600)) is None  # 5 % apart
    assert video_models.aspect_warning((800, 600), (None, None)) is None
    said = video_models.aspect_warning((800, 600), (1200, 600))
    assert said is not None
    warning = str(said)
    assert warning.count(". ") == 0
    assert warning.endswith(".")


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("--model hailuo-2.3", "hailuo-2.3"),
        ("--model=2.3-fast", "hailuo-2.3-fast"),
        ("—model HAILUO-02", "hailuo-02"),
    ],
)
def test_the_mention_flag_reads_the_model(text: str, model: str) -> None:
    parsed = parse_mention(f"<@1> a comet {text}", 1)
    assert parsed.error is None
    assert (parsed.prompt, parsed.model) == ("a comet", model)


def test_an_unknown_model_flag_is_refused() -> None:
    parsed = parse_mention("<@1> a comet --model veo", 1)
    assert parsed.error is not None
    assert "hailuo-2.3-fast" in str(parsed.error)
    assert parse_mention("<@1> a comet", 1).model is None
