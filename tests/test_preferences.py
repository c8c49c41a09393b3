"""Members' own defaults: kept per member per server (both engines), and how they meet a request's options."""

from __future__ import annotations

import pytest

from bot.core import preferences
from bot.core.preferences import Chosen, Preferences, change, model_note, resolve
from bot.core.store import Store
from bot.core.video_models import MODEL_KEYS

ALL = MODEL_KEYS
NO_02 = ("hailuo-2.3", "hailuo-2.3-fast")


@pytest.fixture
def store(contract_store: Store) -> Store:
    return contract_store


# The store -------------------------------------------------------------------------------------------------
async def test_a_member_without_preferences_reads_server_defaults(store: Store) -> None:
    assert await store.member_prefs(10, 1) == Preferences()


async def test_preferences_are_kept_per_member_per_server(store: Store) -> None:
    mine = Preferences(
        duration=10, resolution="768P", model="hailuo-2.3", prompt_expansion=False, dm_results=True
    )
    await store.set_member_prefs(10, 1, mine)
    await store.set_member_prefs(11, 1, Preferences(resolution="1080P"))
    assert await store.member_prefs(10, 1) == mine
    assert await store.member_prefs(11, 1) == Preferences(resolution="1080P")
    assert await store.member_prefs(10, 2) == Preferences()


async def test_setting_preferences_again_replaces_them_and_clearing_resets(store: Store) -> None:
    await store.set_member_prefs(10, 1, Preferences(duration=10, prompt_expansion=True))
    await store.set_member_prefs(10, 1, Preferences(model="hailuo-02"))
    assert await store.member_prefs(10, 1) == Preferences(model="hailuo-02")
    await store.clear_member_prefs(10, 1)
    assert await store.member_prefs(10, 1) == Preferences()


async def test_a_change_reads_and_writes_in_one_step_and_a_refusal_writes_nothing(store: Store) -> None:
    await store.set_member_prefs(10, 1, Preferences(resolution="1080P"))
    prefs, refusal = await store.change_member_prefs(10, 1, lambda p: change(p, "duration", "10", ALL))
    assert refusal == preferences.TEN_NEEDS_768
    assert await store.member_prefs(10, 1) == prefs == Preferences(resolution="1080P")
    prefs, refusal = await store.change_member_prefs(10, 1, lambda p: change(p, "model", "hailuo-2.3", ALL))
    assert refusal is None
    assert await store.member_prefs(10, 1) == Preferences(resolution="1080P", model="hailuo-2.3")


# Changing one preference ------------------------------------------------------------
def test_ten_seconds_with_a_1080p_preference_is_refused_in_one_sentence() -> None:
    prefs, refusal = change(Preferences(resolution="1080P"), "duration", "10", ALL)
    assert prefs == Preferences(resolution="1080P")
    assert refusal == preferences.TEN_NEEDS_768
    prefs, refusal = change(Preferences(duration=10), "resolution", "1080P", ALL)
    assert prefs == Preferences(duration=10)
    assert refusal == preferences.HD_NEEDS_SIX


def test_a_model_the_server_switched_off_is_refused() -> None:
    prefs, refusal = change(Preferences(), "model", "hailuo-02", NO_02)
    assert prefs == Preferences()
    assert refusal is not None
    assert refusal.startswith("This server doesn't allow Hailuo-02.")


@pytest.mark.parametrize(
    ("field", "value"),
    [("duration", "8"), ("duration", "x"), ("resolution", "4K"), ("model", "veo"),
     ("prompt_expansion", "maybe"), ("dm_results", "default"), ("nonsense", "6")],
)  # fmt: skip
def test_forged_values_are_refused(field: str, value: str) -> None:
    assert change(Preferences(duration=6), field, value, ALL) == (
        Preferences(duration=6),
        preferences.UNKNOWN_CHOICE,
    )


def test_default_clears_one_preference() -> None:
    prefs, refusal = change(Preferences(duration=10, model="hailuo-2.3"), "duration", "default", ALL)
    assert (prefs, refusal) == (Preferences(model="hailuo-2.3"), None)
    assert change(Preferences(), "prompt_expansion", "off", ALL) == (
        Preferences(prompt_expansion=False),
        None,
    )


# Applying them ------------------------------------------------------------
def test_preferences_fill_what_the_member_left_out() -> None:
    prefs = Preferences(duration=10, model="hailuo-2.3", prompt_expansion=False)
    assert resolve(prefs, allowed=ALL, has_image=False) == Chosen(10, "768P", False, "hailuo-2.3")


def test_options_given_win_over_preferences() -> None:
    prefs = Preferences(duration=10, model="hailuo-2.3", prompt_expansion=False)
    chosen = resolve(prefs, allowed=ALL, has_image=False, duration=6, resolution="1080P",
                     prompt_expansion=True, model="hailuo-02")  # fmt: skip
    assert chosen == Chosen(6, "1080P", True, "hailuo-02")


def test_a_preference_gives_way_to_a_given_option_it_cant_go_with() -> None:
    assert (
        resolve(Preferences(resolution="1080P"), allowed=ALL, has_image=False, duration=10).resolution
        == "768P"
    )
    assert resolve(Preferences(duration=10), allowed=ALL, has_image=False, resolution="1080P").duration == 6
    both = resolve(Preferences(), allowed=ALL, has_image=False, duration=10, resolution="1080P")
    assert (both.duration, both.resolution) == (10, "1080P")  # both given: the usual refusal follows


def test_without_preferences_the_defaults_apply() -> None:
    assert resolve(Preferences(), allowed=ALL, has_image=False) == Chosen(6, "768P", True, "hailuo-02")
    assert resolve(Preferences(), allowed=NO_02, has_image=False).model == "hailuo-2.3"


def test_hailuo_23_fast_is_the_default_for_image_videos_only() -> None:
    prefs = Preferences(model="hailuo-2.3-fast")
    assert resolve(prefs, allowed=ALL, has_image=True).model == "hailuo-2.3-fast"
    assert resolve(prefs, allowed=ALL, has_image=False).model == "hailuo-02"
    assert resolve(prefs, allowed=ALL, has_image=True, has_last_frame=True).model == "hailuo-02"
    note = model_note(prefs, ALL)
    assert note is not None
    assert note.count(". ") == 0
    assert "prompt alone use Hailuo-02" in note


def test_a_preferred_model_the_server_switched_off_later_is_skipped_and_explained() -> None:
    prefs = Preferences(model="hailuo-2.3")
    assert resolve(prefs, allowed=("hailuo-02",), has_image=False).model == "hailuo-02"
    note = model_note(prefs, ("hailuo-02",))
    assert note is not None
    assert note.startswith("This server has switched Hailuo 2.3 off")
    assert model_note(prefs, ALL) is None
