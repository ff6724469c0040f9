"""The daemon: source -> wake -> VAD -> ASR -> intent -> recommender -> player.

`Pipeline.feed` is the whole loop body, synchronous and free of I/O of its own;
`simulate` drives it from a file as fast as it can go, `run` from the microphone in
real time with sd_notify, SIGTERM and SIGHUP handling around it.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from heymusic.asr import Transcriber
from heymusic.asr_rescore import Heard, RequestScorer
from heymusic.audio_source import (
    CHUNK_SAMPLES,
    SAMPLE_RATE,
    AudioSource,
    MicSource,
    check_microphone,
    open_input,
)
from heymusic.config import ConfigError, Settings, load_settings
from heymusic.echo import EchoCanceller, PlaybackReference
from heymusic.errors import UserError
from heymusic.events import (
    Event,
    IntentEvent,
    Notice,
    PlayerCommand,
    Results,
    SpeechEnd,
    StageError,
    Transcript,
    Wake,
    WakeCandidate,
)
from heymusic.intents import Intent, IntentParser
from heymusic.players.base import Player, PlayerState
from heymusic.vad import CommandRecorder
from heymusic.wake import WakeDetector, release_freed_memory

_LOGGER = logging.getLogger(__name__)

_SIMPLE_ACTIONS = {
    "skip": ("next", lambda p: p.next()),
    "previous": ("previous", lambda p: p.previous()),
    "stop": ("stop", lambda p: p.stop()),
    "pause": ("pause", lambda p: p.pause()),
    "resume": ("resume", lambda p: p.resume()),
}
OVERRUN_REPORT_S = 5.0
"""Shortest time between two overrun notices (the count in them is always complete)."""
_PRIVATE_FIELDS = ("text", "query")
"""What a person said: left out of the daemon's own log unless log_transcripts is on."""


class Pipeline:
    """One instance per loaded config; `feed` 80 ms chunks, get the events they caused."""

    def __init__(
        self,
        settings: Settings,
        player: Player,
        recommender: Any,
        messages: deque[str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.player = player
        self.recommender = recommender
        self.asr = Transcriber(settings)
        self.wake = WakeDetector(settings, self.asr.model)
        self.asr.set_wake_phrase(self.wake.phrases[0])
        self.requests = RequestScorer(self.asr.model)
        self.recorder = CommandRecorder(settings.vad)
        self.intents = IntentParser(self.wake.phrases, settings.player.volume_step)
        self._mute_s = 0.0 if player.name == "log" else settings.audio.earcon_mute_seconds
        self._clock = clock
        self.samples = 0
        self._listening = False
        self._mute_until_s = 0.0
        self.messages: deque[str] = messages if messages is not None else deque(maxlen=100)
        """Player messages from its worker thread, turned into events by the loop."""
        release_freed_memory()  # model loading leaves ~35 MB of freed heap behind

    @property
    def audio_s(self) -> float:
        return self.samples / SAMPLE_RATE

    def feed(self, chunk: np.ndarray) -> list[Event]:
        self.samples += len(chunk)
        events: list[Event] = [Notice(self.audio_s, m) for m in _drain(self.messages)]
        # The wake model hears every chunk, so its feature window never holds stale audio.
        self.wake.music_playing = self.player.state is PlayerState.PLAYING
        wake = self.wake.process(chunk, self.audio_s)
        if not self._listening:
            self.recorder.idle(chunk)
            if wake is not None:
                events.append(wake)
            if isinstance(wake, Wake) or (
                isinstance(wake, WakeCandidate) and wake.asr_score is not None
            ):
                # Whisper's buffers from its check, passed or not: left in the heap they add
                # to the command's own (the check encodes 15 s, the command 30 s)
                release_freed_memory()
            if isinstance(wake, Wake):
                self._start_listening(wake.audio_s)
            return events
        muted = self.audio_s <= self._mute_until_s
        end = self.recorder.process(chunk, self.audio_s, muted=muted)
        if end is not None:
            events.append(end)
            if isinstance(end, SpeechEnd):
                events.extend(self._command(end.audio_s))
            self._stop_listening()
        return events

    def finish(self) -> list[Event]:
        """End of input: let a command in progress end as if silence followed."""
        events: list[Event] = [] if self._listening else list(self.wake.finish())
        silence = np.zeros(CHUNK_SAMPLES, dtype=np.int16)
        while self._listening:
            events.extend(self.feed(silence))
        return events

    def _start_listening(self, wake_s: float) -> None:
        """`wake_s`: when the phrase was heard; Whisper's check confirms it up to 0.5 s later."""
        self._listening = True
        talking = self.recorder.start(wake_s, replay_s=self.audio_s - wake_s)
        self.player.duck()
        if not talking:  # a cue over the command would hide words from the recognizer
            self.player.earcon("listening")
            self._mute_until_s = self.audio_s + self._mute_s

    def _stop_listening(self) -> None:
        self._listening = False
        self.player.unduck()
        self.wake.reset()
        release_freed_memory()  # Whisper's decoding buffers, after the command is answered

    def _command(self, audio_s: float) -> list[Event]:
        """ASR -> intent -> action for the command that just ended (speech end at `audio_s`)."""
        spoken_at = self._clock()
        events: list[Event] = []
        try:
            audio = self.recorder.utterance()
            text = self.asr.transcribe(audio)
            events.append(Transcript(audio_s, text, (self._clock() - spoken_at) * 1000.0))
            intent = self.intents.parse(text)
            events.append(IntentEvent(audio_s, intent.name, intent.query, intent.value))
            heard = functools.partial(self.requests.losses, audio, text)
            events.extend(self._act(intent, audio_s, spoken_at, heard))
        except Exception as err:  # one bad command must not stop the daemon
            _LOGGER.debug("command failed", exc_info=True)
            events.append(StageError(audio_s, f"{type(err).__name__}: {err}"))
            self.player.earcon("sorry")
        return events

    def _act(
        self, intent: Intent, audio_s: float, spoken_at: float, heard: Heard | None = None
    ) -> list[Event]:
        """`heard`: how well other requests fit the command's audio (a weak title match is
        settled by it)."""
        player = self.player

        def issued(action: str, detail: str | None = None) -> PlayerCommand:
            return PlayerCommand(audio_s, action, (self._clock() - spoken_at) * 1000.0, detail)

        if intent.name in _SIMPLE_ACTIONS:
            action, call = _SIMPLE_ACTIONS[intent.name]
            call(player)
            return [issued(action)]
        if intent.name == "volume":
            if isinstance(intent.value, str):
                player.change_volume(int(intent.value))
            elif isinstance(intent.value, int):
                player.set_volume(intent.value)
            return [issued("volume", str(intent.value))]
        if intent.name == "now_playing":
            track = player.now_playing()
            answer = f"This is {track.name} by {track.artist}." if track else "Nothing is playing."
            player.say(answer)
            return [issued("say", answer)]
        if intent.name == "play" and intent.query:
            found = self.recommender.recommend(intent.query, heard=heard)
            return self._play(found, audio_s, issued, "play")
        if intent.name == "more_like_this":
            current = player.now_playing()
            if current is None:
                player.say("Nothing is playing.")
                return [issued("say", "Nothing is playing.")]
            found = self.recommender.more_like(current, exclude=(current.track_id,))
            return self._play(found, audio_s, issued, "queue")
        if intent.name == "unknown":
            player.earcon("sorry")
        return []  # cancel: a false wake or a change of mind does nothing

    def _play(
        self,
        found: list[tuple[Any, float]],
        audio_s: float,
        issued: Callable[..., PlayerCommand],
        action: str,
    ) -> list[Event]:
        from heymusic.recommender import track_result

        results = Results(audio_s, tuple(track_result(t, s) for t, s in found))
        if not found:
            self.player.say("I found nothing for that.")
            return [results, issued("say", "nothing found")]
        tracks = [t for t, _ in found]
        self.player.enqueue(tracks) if action == "queue" else self.player.play(tracks)
        return [results, issued(action, tracks[0].track_id)]


def _drain(messages: deque[str]) -> Iterator[str]:
    while messages:
        yield messages.popleft()


class _NoRecommender:
    """Stands in when the recommender cannot load: music requests fail with the reason,
    control commands keep working."""

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def recommend(self, *args: Any, **kwargs: Any) -> list[tuple[Any, float]]:
        raise UserError(self.problem)

    more_like = recommend


def load_recommender(settings: Settings) -> Any:
    """The recommender, or a _NoRecommender saying why (no catalog yet, broken model)."""
    try:
        module = importlib.import_module("heymusic.recommender")
        return module.load_recommender(settings)
    except UserError as err:
        _LOGGER.warning("music requests will fail: %s; see `heymusic doctor`", err)
        return _NoRecommender(str(err))
    except Exception as err:  # a broken recommender must not take control commands down
        _LOGGER.error("recommender failed to load: %s: %s", type(err).__name__, err)
        return _NoRecommender(f"the recommender failed to load ({type(err).__name__}: {err})")


def build(
    settings: Settings,
    kind: str | None,
    audio_out: str | None,
    old: Pipeline | None = None,
    echo: EchoCanceller | None = None,
) -> Pipeline:
    """Recommender, player and pipeline wired together; a reload keeps the old player.

    `echo`: the mic's canceller, to be told what the speaker plays."""
    recommender = load_recommender(settings)
    if old is not None:
        pipeline = Pipeline(settings, old.player, recommender, old.messages)
        pipeline.samples = old.samples  # one continuous timeline
        return pipeline
    from heymusic.players import make_player

    messages: deque[str] = deque(maxlen=100)
    more_like = None if isinstance(recommender, _NoRecommender) else recommender.more_like
    reference = echo.reference if echo is not None else None
    player = make_player(settings, kind, audio_out, messages.append, more_like, reference)
    return Pipeline(settings, player, recommender, messages)


class EventLog:
    """Events out: JSON lines on stdout, or one readable log line each on stderr."""

    def __init__(self, as_json: bool, private: bool) -> None:
        self._json = as_json
        self._private = private

    def __call__(self, event: Event) -> None:
        data = event.to_dict()
        if self._private:
            for key in _PRIVATE_FIELDS:
                if data.get(key) is not None:
                    data[key] = "(not logged)"
        if self._json:
            print(_json_line(data), flush=True)
        else:
            details = " ".join(f"{k}={v}" for k, v in data.items() if k not in ("type", "audio_s"))
            _LOGGER.info("%8.2fs %s %s", data["audio_s"], data["type"], details)


def _json_line(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, ensure_ascii=False)


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """The daemon's loop over a file as fast as it goes; transcripts always shown."""
    source = open_input(args.file)
    emit = EventLog(args.json, private=False)
    pipeline = build(settings, args.player or "log", args.audio_out)
    try:
        for chunk in source.chunks():
            for event in pipeline.feed(chunk):
                emit(event)
        for event in pipeline.finish():
            emit(event)
    finally:
        source.close()
        pipeline.player.close()
    return 0


class _Stop(BaseException):
    """SIGTERM/SIGINT: leave the loop, close devices, exit 0. A BaseException, so the
    per-command `except Exception` cannot swallow a SIGTERM that lands mid-command."""


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The always-on daemon: microphone (or --input) in real time until SIGTERM."""
    import sdnotify

    if not args.input and not os.environ.get("NOTIFY_SOCKET"):
        # Fail fast, before loading models. As a service, wait for the mic instead (a USB
        # mic may be plugged in later; exiting would run into systemd's restart limit).
        check_microphone(settings.audio.input_device)
    if args.input and args.input != "-":
        open_input(args.input).close()  # an unreadable file: one line now, not after model loads
    notifier = sdnotify.SystemdNotifier()
    if notifier.socket is not None:  # a slow reader must never stall the audio loop
        notifier.socket.setblocking(False)
    reload_requested = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload_requested.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    emit = EventLog(args.json, private=not settings.log_transcripts)
    echo = _echo_canceller(args, settings, emit)
    pipeline = build(settings, args.player, args.audio_out, echo=echo)
    # The lambda must see `pipeline` rebound by a reload: late binding is the point.
    audio_now = lambda: pipeline.audio_s  # noqa: E731
    try:
        chunks = _live_chunks(
            args.input, settings, emit, audio_now, lambda: notifier.notify("WATCHDOG=1"), echo
        )
        notifier.notify("READY=1")
        _LOGGER.info("listening (%s)", args.input or "microphone")
        last_ping = 0.0
        for chunk in chunks:
            for event in pipeline.feed(chunk):
                emit(event)
            now = time.monotonic()
            if now - last_ping >= 2.0:  # only while the loop progresses
                notifier.notify("WATCHDOG=1")
                last_ping = now
            if reload_requested.is_set():
                reload_requested.clear()
                pipeline, settings = _reload(args.config, pipeline, settings, emit)
    except (_Stop, KeyboardInterrupt):
        _LOGGER.info("stopping")
    finally:
        notifier.notify("STOPPING=1")
        pipeline.player.close()
    return 0


def _reload(
    path: Path | None, pipeline: Pipeline, settings: Settings, emit: EventLog
) -> tuple[Pipeline, Settings]:
    """SIGHUP: load the config again; on any problem keep running with the old one."""
    try:
        new_settings = load_settings(path)
        new_pipeline = build(new_settings, None, None, old=pipeline)
    except (ConfigError, UserError) as err:
        emit(StageError(pipeline.audio_s, f"config not reloaded, keeping the old one: {err}"))
        return pipeline, settings
    emit(Notice(pipeline.audio_s, "config reloaded"))
    return new_pipeline, new_settings


def _echo_canceller(
    args: argparse.Namespace, settings: Settings, emit: EventLog
) -> EchoCanceller | None:
    """The mic's echo canceller when we play aloud on this machine and listen to its mic."""
    kind = args.player or settings.player.kind
    if not settings.audio.echo_cancel or args.input or args.audio_out or kind == "log":
        return None
    try:
        return EchoCanceller(PlaybackReference())
    except UserError as err:
        emit(StageError(0.0, f"{err}; listening without it"))
        return None


def _live_chunks(
    spec: str | None,
    settings: Settings,
    emit: EventLog,
    now: Callable[[], float],
    alive: Callable[[], None],
    echo: EchoCanceller | None = None,
) -> Iterator[np.ndarray]:
    """Chunks in real time. A file is paced like a microphone; a lost mic is reopened
    (calling `alive` while it waits: the watchdog is for a stuck loop, not an unplugged mic)."""
    if spec:
        return _paced(open_input(spec), spec != "-")
    return _microphone(settings, emit, now, alive, echo)


def _paced(source: AudioSource, pace: bool) -> Iterator[np.ndarray]:
    start = time.monotonic()
    try:
        for n, chunk in enumerate(source.chunks(), 1):
            if pace:
                time.sleep(max(0.0, start + n * CHUNK_SAMPLES / SAMPLE_RATE - time.monotonic()))
            yield chunk
    finally:
        source.close()


def _microphone(
    settings: Settings,
    emit: EventLog,
    now: Callable[[], float],
    alive: Callable[[], None],
    echo: EchoCanceller | None = None,
) -> Iterator[np.ndarray]:
    """The mic, reopened with growing waits (up to 30 s) whenever it fails."""
    wait = settings.audio.reconnect_seconds
    try:
        mic = MicSource(settings.audio.input_device, echo=echo)
    except UserError as err:  # no microphone yet: only reached as a service
        emit(StageError(now(), f"{err}; retrying in {wait:.0f} s"))
        mic = _reopen(settings, emit, now, wait, alive, echo)
    try:
        while True:
            seen, reported_at = 0, float("-inf")
            try:
                for chunk in mic.chunks():
                    # Every loss is counted; a loop that stays behind reports every few seconds,
                    # not once per dropped chunk.
                    if mic.overruns != seen and time.monotonic() - reported_at >= OVERRUN_REPORT_S:
                        seen, reported_at = mic.overruns, time.monotonic()
                        emit(Notice(now(), f"audio overrun: {seen} chunks dropped so far"))
                    yield chunk
                    wait = settings.audio.reconnect_seconds
            except UserError as err:
                emit(StageError(now(), f"{err}; retrying in {wait:.0f} s"))
            mic.close()
            mic = _reopen(settings, emit, now, wait, alive, echo)
    finally:
        mic.close()


def _reopen(
    settings: Settings,
    emit: EventLog,
    now: Callable[[], float],
    wait: float,
    alive: Callable[[], None],
    echo: EchoCanceller | None,
) -> MicSource:
    while True:
        until = time.monotonic() + wait
        while (left := until - time.monotonic()) > 0:
            alive()
            time.sleep(min(left, 1.0))
        try:
            mic = MicSource(settings.audio.input_device, echo=echo)
        except UserError as err:
            wait = min(wait * 2, 30.0)
            emit(StageError(now(), f"{err}; retrying in {wait:.0f} s"))
            continue
        emit(Notice(now(), "microphone reopened"))
        return mic
