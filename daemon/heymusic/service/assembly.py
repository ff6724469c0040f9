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
from heymusic.audio.front_end import FrontEnd
from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.events import Event, StageError
from heymusic.history.store import HOUSEHOLD, HistoryError, HistoryStore, read_events, reading
from heymusic.history.taste import Taste, Tastes
from heymusic.memory import release_freed_memory
from heymusic.players import make_player
from heymusic.players.base import Player
from heymusic.service.listening import Listening
from heymusic.service.pipeline import Pipeline, Recommender, Stages
from heymusic.speech.asr import Transcriber
from heymusic.speech.control_listen import ControlListen
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
        self.taste: Taste | None = None

    def recommend(self, *args: Any, **kwargs: Any) -> list[tuple[Track, float]]:
        raise UserError(self.problem)

    more_like = favourites = recommend

    def describes(self, text: str) -> bool:
        from heymusic.music.song_features import describes_music

        return describes_music(text)

    def names_a_song(self, text: str) -> bool:
        return False

    def names(self, text: str, heard: Any = None) -> bool:
        return False

    def title_score(self, text: str) -> float:
        return 0.0


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


def open_listening(
    settings: Settings, recommender: Recommender, on_problem: Callable[[str], None]
) -> Listening | None:
    """The history recorder with every profile's taste read back, the household's handed to
    the recommender; None when `[history] record = false`. A history that cannot be read is
    one line and an empty taste: the daemon plays on."""
    if not settings.history.record:
        return None
    store = HistoryStore(
        on_problem=on_problem, max_bytes=int(settings.history.max_megabytes * 1_000_000)
    )
    try:
        with reading(store.path, on_problem) as conn:
            events = read_events(conn)
    except HistoryError as err:
        on_problem(f"{err}; your taste starts empty this time")
        events = []
    tastes = Tastes(events)
    recommender.taste = tastes.get(HOUSEHOLD)
    catalog = getattr(recommender, "catalog", None)
    return Listening(store, tastes, catalog.get if catalog is not None else lambda _: None)


def build_stages(
    settings: Settings,
    player: Player,
    recommender: Recommender,
    listening: Listening | None = None,
) -> Stages:
    """The listening stages for `settings`, around a player, recommender and history
    recorder already made."""
    asr = Transcriber(settings)
    wake = WakeDetector(settings, asr.model)
    asr.set_wake_phrase(wake.phrases[0])
    intents = IntentParser(
        wake.phrases,
        settings.player.volume_step,
        extra=settings.intents,
        describes=recommender.describes,
        title_score=recommender.title_score,
    )
    scorer = RequestScorer(asr.model, intents.play_verbs)
    stages = Stages(
        wake=wake,
        recorder=CommandRecorder(settings.vad),
        asr=asr,
        second_listen=scorer,
        control_listen=ControlListen(intents, scorer) if settings.asr.recheck_controls else None,
        intents=intents,
        recommender=recommender,
        player=player,
        earcon_mute_seconds=_mute_seconds(settings, player),
        front_end=FrontEnd(settings.front_end),
        listening=listening,
        min_clarity=settings.asr.min_clarity,
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
        front_end=FrontEnd(settings.front_end),  # its state is one stream's
        listening=shared.listening.for_another_room() if shared.listening else None,
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
        search_what_plays(recommender, old.player)
        listening = old.listening
        if listening is not None:
            recommender.taste = listening.tastes.get(listening.profile)
        pipeline = Pipeline(
            build_stages(settings, old.player, recommender, listening), old.messages
        )
        pipeline.samples = old.samples  # one continuous timeline
        return pipeline
    messages: deque[str] = deque(maxlen=100)
    more_like = None if isinstance(recommender, NoRecommender) else recommender.more_like
    reference = echo.reference if echo is not None else None
    player = make_player(settings, kind, audio_out, messages.append, more_like, reference)
    search_what_plays(recommender, player)
    listening = open_listening(settings, recommender, messages.append)
    return Pipeline(build_stages(settings, player, recommender, listening), messages)


def search_what_plays(recommender: Recommender, player: Player) -> None:
    """Let the recommender answer with songs the player can play (when the catalog has any):
    without Spotify, a big catalog with a few local files must not answer five songs that
    are all skipped."""
    can_play = getattr(player, "can_play", None)
    restrict = getattr(recommender, "restrict_to", None)
    if can_play is not None and restrict is not None:
        restrict(can_play)


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
