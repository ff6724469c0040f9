"""Building the daemon from its config: each stage loaded once, wired to the others.

Whisper loads first because the wake word's last check shares it; the player is kept
across a config reload (SIGHUP), so what plays goes on playing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from heymusic.audio.echo import EchoCanceller, PlaybackReference
from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.events import Event, StageError
from heymusic.memory import release_freed_memory
from heymusic.players import make_player
from heymusic.players.base import Player
from heymusic.service.pipeline import Pipeline, Recommender, Stages
from heymusic.speech.asr import Transcriber
from heymusic.speech.intents import IntentParser
from heymusic.speech.second_listen import RequestScorer
from heymusic.speech.vad import CommandRecorder
from heymusic.track import Track
from heymusic.wake.detector import WakeDetector

_LOGGER = logging.getLogger(__name__)


class NoRecommender:
    """Stands in when the recommender cannot load: music requests fail with the reason,
    control commands keep working."""

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def recommend(self, *args: Any, **kwargs: Any) -> list[tuple[Track, float]]:
        raise UserError(self.problem)

    more_like = recommend


def load_recommender(settings: Settings) -> Recommender:
    """The recommender, or a NoRecommender saying why (no catalog yet, broken model)."""
    from heymusic.music import recommender

    try:
        return recommender.load_recommender(settings)
    except UserError as err:
        _LOGGER.warning("music requests will fail: %s; see `heymusic doctor`", err)
        return NoRecommender(str(err))
    except Exception as err:  # a broken recommender must not take control commands down
        _LOGGER.error("recommender failed to load: %s: %s", type(err).__name__, err)
        return NoRecommender(f"the recommender failed to load ({type(err).__name__}: {err})")


def build_stages(settings: Settings, player: Player, recommender: Recommender) -> Stages:
    """The listening stages for `settings`, around a player and recommender already made."""
    asr = Transcriber(settings)
    wake = WakeDetector(settings, asr.model)
    asr.set_wake_phrase(wake.phrases[0])
    stages = Stages(
        wake=wake,
        recorder=CommandRecorder(settings.vad),
        asr=asr,
        second_listen=RequestScorer(asr.model),
        intents=IntentParser(wake.phrases, settings.player.volume_step),
        recommender=recommender,
        player=player,
        earcon_mute_seconds=_mute_seconds(settings, player),
    )
    release_freed_memory()  # model loading leaves ~35 MB of freed heap behind
    return stages


def room_pipeline(
    settings: Settings, shared: Pipeline, player: Player, messages: deque[str]
) -> Pipeline:
    """Another room's pipeline: its own wake state, recorder and player; Whisper, the
    intents and the recommender are `shared`'s (loaded once, however many rooms)."""
    stages = dataclasses.replace(
        shared.stages,
        wake=WakeDetector(settings, shared.asr.model),
        recorder=CommandRecorder(settings.vad),
        player=player,
        earcon_mute_seconds=_mute_seconds(settings, player),
    )
    return Pipeline(stages, messages)


def _mute_seconds(settings: Settings, player: Player) -> float:
    """How long the mic is ignored after the "listening" cue: 0 when nothing is heard."""
    return 0.0 if player.name == "log" else settings.audio.earcon_mute_seconds


def build(
    settings: Settings,
    kind: str | None,
    audio_out: str | None,
    old: Pipeline | None = None,
    echo: EchoCanceller | None = None,
) -> Pipeline:
    """Recommender, player and pipeline wired together; a reload keeps the old player.

    Args:
        kind: the player (None: `[player] kind`).
        audio_out: the speaker when None; "null" discards; a .wav path records.
        old: the pipeline a reload replaces: its player, messages and timeline go on.
        echo: the mic's canceller, to be told what the speaker plays.
    """
    recommender = load_recommender(settings)
    if old is not None:
        pipeline = Pipeline(build_stages(settings, old.player, recommender), old.messages)
        pipeline.samples = old.samples  # one continuous timeline
        return pipeline
    messages: deque[str] = deque(maxlen=100)
    more_like = None if isinstance(recommender, NoRecommender) else recommender.more_like
    reference = echo.reference if echo is not None else None
    player = make_player(settings, kind, audio_out, messages.append, more_like, reference)
    return Pipeline(build_stages(settings, player, recommender), messages)


def echo_canceller(
    settings: Settings,
    player_kind: str | None,
    live_input: str | None,
    audio_out: str | None,
    report: Callable[[Event], None],
) -> EchoCanceller | None:
    """The mic's echo canceller when we play aloud on this machine and listen to its mic.

    Args:
        player_kind: the `--player` override (None: `[player] kind`).
        live_input: `--input` (a file or stdin instead of the mic: nothing to cancel).
        audio_out: `--audio-out` (recorded or discarded: nothing reaches the mic).
        report: takes the event saying why there is none when one was wanted.
    """
    kind = player_kind or settings.player.kind
    if not settings.audio.echo_cancel or live_input or audio_out or kind == "log":
        return None
    try:
        return EchoCanceller(PlaybackReference())
    except UserError as err:
        report(StageError(0.0, f"{err}; listening without it"))
        return None
