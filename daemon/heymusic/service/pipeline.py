"""The daemon's loop: source -> front end -> wake -> VAD -> ASR -> intent -> recommender -> player.

`Pipeline.feed` is the whole loop body, synchronous and free of I/O of its own; the
stages are built elsewhere (heymusic.service.assembly) and handed in, so a test can run
it on stages of its choosing. heymusic.service.runner drives it from a file or a mic.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from heymusic.audio.format import CHUNK_SAMPLES, SAMPLE_RATE
from heymusic.audio.front_end import FrontEnd
from heymusic.events import (
    Event,
    IntentEvent,
    Notice,
    PlayerCommand,
    SpeechEnd,
    StageError,
    Transcript,
    Wake,
    WakeCandidate,
)
from heymusic.memory import release_freed_memory
from heymusic.players.base import Player, PlayerState
from heymusic.service.actions import Actions, Recommender, unclear, verbless_song
from heymusic.service.listening import Listening
from heymusic.speech.asr import Transcriber
from heymusic.speech.control_listen import ControlListen
from heymusic.speech.intents import IntentParser
from heymusic.speech.second_listen import Heard, RequestScorer, once_each
from heymusic.speech.vad import CommandRecorder
from heymusic.wake.detector import WakeDetector

_LOGGER = logging.getLogger(__name__)

CUE_PAUSE_S = 0.5
"""Silence after the wake phrase before the "listening" cue plays. A person who waits for
it pauses longer; one who says the command in the same breath pauses less (espeak-ng's
comma: 0.0-0.22 s) and talks on, and a cue then would mute the command's first word. Live,
Whisper's check takes about this long after the phrase anyway, so the cue waits for audio
already heard."""
PAUSE_S = 0.15
"""Silence that ends the phrase: a comma's pause, longer than a stop consonant's closure."""
TALKING_ON_S = 0.48
"""Voice after the fire that is the command, not the phrase's tail: "music" can go on for
0.3 s after the first stage fires, and a wake the verifier is sure of comes then."""


@dataclass(frozen=True)
class Stages:
    """Everything the loop hands audio, text or requests to, built once per config."""

    wake: WakeDetector
    recorder: CommandRecorder
    asr: Transcriber
    second_listen: RequestScorer
    intents: IntentParser
    recommender: Recommender
    """The recommender, or a stand-in that says why music requests cannot be answered."""
    player: Player
    earcon_mute_seconds: float
    """The mic is ignored this long after the "listening" cue (0 when nothing is heard)."""
    front_end: FrontEnd = field(default_factory=FrontEnd)
    """What each path hears of the source (default: all of them the source untouched)."""
    control_listen: ControlListen | None = None
    """Settles unsure controls on the audio; None when `[asr] recheck_controls` is off."""
    listening: Listening | None = None
    """Records the listening history (None: `[history] record = false`)."""
    min_clarity: float = -math.inf
    """`[asr] min_clarity`: a transcript Whisper was less sure of is not acted on as written
    (the default here acts on all)."""


@dataclass(frozen=True)
class Routed:
    """Where a command that names rooms goes (heymusic.rooms: "play jazz in the kitchen")."""

    here: str | None
    """What this room acts on: the command without the rooms (None: nothing here)."""
    elsewhere: tuple[str, ...] = ()
    """The other rooms it was sent to, which answer it as if said there."""


#: The hub's: a command's rooms, the command sent on to the others (None: no rooms named).
Router = Callable[[str], Routed | None]


class Pipeline:
    """One instance per loaded config; `feed` 80 ms chunks, get the events they caused."""

    def __init__(
        self,
        stages: Stages,
        messages: deque[str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """`messages`: the player's lines from its worker thread (shared with the player);
        `clock`: what latencies are measured with."""
        self.stages = stages
        """What it was built from: another room's pipeline shares its models."""
        self.player = stages.player
        self.recommender = stages.recommender
        self.wake = stages.wake
        self.recorder = stages.recorder
        self.asr = stages.asr
        self._second_listen = stages.second_listen
        self._control_listen = stages.control_listen
        self._intents = stages.intents
        self._min_clarity = stages.min_clarity
        self._mute_s = stages.earcon_mute_seconds
        self._front_end = stages.front_end
        self._clock = clock
        self.listening = stages.listening
        self._actions = Actions(stages.player, stages.recommender, clock, stages.listening)
        self.samples = 0
        self._listening = False
        self._resumed = False
        """Whether this command already went on past an end that held only the wake phrase."""
        self._wake_in_audio = True
        """Whether the command's audio starts with the wake phrase (not a satellite's)."""
        self._mute_until_s = 0.0
        self._cue_pending = False
        """Woken, and the cue waits for a pause (CUE_PAUSE_S) or is given up on speech."""
        self._quiet_s = 0.0
        """The silence before the chunk heard last (a voice after a pause is the command)."""
        self.messages: deque[str] = messages if messages is not None else deque(maxlen=100)
        """Player messages from its worker thread, turned into events by the loop."""
        self.router: Router | None = None
        """Set by the rooms hub: commands that name rooms go there."""

    @property
    def audio_s(self) -> float:
        return self.samples / SAMPLE_RATE

    def feed(self, chunk: np.ndarray) -> list[Event]:
        self.samples += len(chunk)
        events: list[Event] = [Notice(self.audio_s, m) for m in _drain(self.messages)]
        paths = self._front_end.process(chunk)
        # The wake model hears every chunk, so its feature window never holds stale audio.
        self.wake.music_playing = self.player.state is PlayerState.PLAYING
        if self.listening is not None:
            self.listening.observe(self.player, self.audio_s)
        wake = self.wake.process(paths.wake, self.audio_s)
        if not self._listening:
            self.recorder.idle(paths.asr, paths.vad)
            if wake is not None:
                events.append(wake)
            if isinstance(wake, Wake) or (
                isinstance(wake, WakeCandidate) and wake.asr_score is not None
            ):
                # Whisper's buffers from its check, passed or not: left in the heap they add
                # to the command's own (the check encodes 15 s, the command 30 s)
                release_freed_memory()
            if isinstance(wake, Wake):
                if self.listening is not None:  # whose taste and history this command is
                    self.recommender.taste = self.listening.use(wake.person)
                self._start_listening(wake.audio_s)
            return events
        muted = self.audio_s <= self._mute_until_s
        end = self.recorder.process(paths.asr, self.audio_s, muted=muted, vad_chunk=paths.vad)
        self._cue_after_pause()
        if end is None:
            return events
        if isinstance(end, SpeechEnd):
            answered = self._command(end.audio_s)
            if answered is None:
                return events  # only the wake phrase so far: the command is still to come
            events.append(end)
            events.extend(answered)
        else:
            events.append(end)
        self._stop_listening()
        return events

    def close(self) -> None:
        """Stop the player (it saves its state), then write what the history still holds."""
        self.player.close()
        if self.listening is not None:
            self.listening.store.close()

    def finish(self) -> list[Event]:
        """End of input: let a command in progress end as if silence followed."""
        events: list[Event] = [] if self._listening else list(self.wake.finish())
        silence = np.zeros(CHUNK_SAMPLES, dtype=np.int16)
        while self._listening:
            events.extend(self.feed(silence))
        return events

    @property
    def in_command(self) -> bool:
        """Woken: the audio fed now is a command's."""
        return self._listening

    def listen_now(self) -> None:
        """Start a command without a wake here: the wake word was heard elsewhere (a
        satellite's own wake service), and what comes next is the command.

        No cue and no mute: the satellite gave its own (--awake-wav, its mic muted while it
        played) and streams the command from its first word. Muting that audio here cut the
        first syllable ("play Cool by Alesso" came out "hey kill my lesson": bench/rooms.py
        wake mode, 11 of 18 commands not acted on)."""
        if not self._listening:
            self.recorder.forget()
            self._start_listening(self.audio_s, cue=False, wake_in_audio=False)

    def _start_listening(self, wake_s: float, cue: bool = True, wake_in_audio: bool = True) -> None:
        """`wake_s`: when the phrase was heard (Whisper's check confirms it up to 0.3 s of
        audio later). `cue`: the "listening" earcon, the mic muted while it plays, once the
        person pauses (not over speech: it would hide the command's words from the recognizer).
        `wake_in_audio`: the command's audio starts with the wake phrase (not a satellite's)."""
        self._listening = True
        self._wake_in_audio = wake_in_audio
        self._resumed = False
        self.recorder.start(wake_s, replay_s=self.audio_s - wake_s)
        self.player.duck()
        self._cue_pending = cue and not self._talked_on()
        self._quiet_s = self.recorder.quiet_s

    def _cue_after_pause(self) -> None:
        """The "listening" cue once CUE_PAUSE_S of silence followed the phrase; none once
        the person talks on, or it would come after the command: a voice after a pause
        (PAUSE_S; a stop consonant inside "music" is shorter) or more voice than the
        phrase's tail (TALKING_ON_S)."""
        if not self._cue_pending:
            return
        quiet_s, before_s = self.recorder.quiet_s, self._quiet_s
        self._quiet_s = quiet_s
        if quiet_s >= CUE_PAUSE_S - 1e-6:
            self.player.earcon("listening")
            self._mute_until_s = self.audio_s + self._mute_s
        elif not self._talked_on() and (quiet_s > 0.0 or before_s < PAUSE_S):
            return
        self._cue_pending = False

    def _talked_on(self) -> bool:
        """More voice since the fire than the phrase's tail (TALKING_ON_S)."""
        return self.recorder.voiced_s >= TALKING_ON_S - 1e-6

    def _stop_listening(self) -> None:
        self._listening = False
        self._cue_pending = False
        self.player.unduck()
        self.wake.reset()
        release_freed_memory()  # Whisper's decoding buffers, after the command is answered

    def _command(self, audio_s: float) -> list[Event] | None:
        """ASR -> intent -> action for the command that just ended (speech end at `audio_s`).

        None, once per command, when the transcript holds the wake phrase alone: the wake
        fires before the phrase is over, its tail counts as speech, and a pause after the
        phrase (people wait for the cue) ended the command before it was said. Listening
        then goes on as if the wake had just fired.
        """
        spoken_at = self._clock()
        events: list[Event] = []
        try:
            audio = self.recorder.utterance()
            heard = self.asr.hear(audio)
            if not self._resumed and self._intents.only_wake(heard.text):
                self._resumed = True
                self.recorder.resume(self.audio_s)
                return None
            asr_ms = (self._clock() - spoken_at) * 1000.0
            events.append(Transcript(audio_s, heard.text, asr_ms, heard.clarity))
            # Whisper's prompt starts with the wake phrase: where the audio lacks it (a
            # satellite streams what follows its own wake), any first word is unsure and a
            # clear "Skip this song." scored -0.79, so the clarity is not asked for there
            clear = heard.clear(self._min_clarity if self._wake_in_audio else -math.inf)
            self._act(heard.text, audio_s, spoken_at, audio, events, clear)
        except Exception as err:  # one bad command must not stop the daemon
            events.append(self._failed(audio_s, err))
        return events

    def command_text(self, text: str) -> list[Event]:
        """A command that arrives as text (Home Assistant's conversation agent): the same
        intent -> action as a spoken one, at the current point of the timeline."""
        events: list[Event] = []
        try:
            self._act(text, self.audio_s, self._clock(), None, events)
        except Exception as err:
            events.append(self._failed(self.audio_s, err))
        return events

    def _act(
        self,
        text: str,
        audio_s: float,
        spoken_at: float,
        audio: np.ndarray | None,
        events: list[Event],
        clear: bool = True,
    ) -> None:
        """Intent and action for `text`, added to `events` as they happen: what was done
        before a step failed is still reported. `audio`: the command as spoken (None for a
        typed one), where unsure controls and weak titles are settled; not `clear`: Whisper
        was unsure of `text`, so it is not acted on as written (`[asr] min_clarity`)."""
        routed = self.router(text) if self.router is not None else None
        if routed is not None and routed.elsewhere:
            ms = (self._clock() - spoken_at) * 1000.0
            events.append(PlayerCommand(audio_s, "elsewhere", ms, ", ".join(routed.elsewhere)))
            if routed.here is None:
                self.player.earcon("ok")
                return
        if routed is not None and routed.here is not None:
            text = routed.here
        intent = self._intents.parse(text, typed=audio is None)
        heard: Heard | None = None
        if audio is not None:
            heard = once_each(functools.partial(self._second_listen.losses, audio, text))
            if not clear:
                intent = unclear(intent, self._actions.recommender, heard)
            if self._control_listen is not None:
                intent = self._control_listen.settle(audio, text, intent)
        command = self._intents.split_wake(text, typed=audio is None)[1]
        intent = verbless_song(intent, text, command, self._actions.recommender)
        events.append(IntentEvent(audio_s, intent.name, intent.query, intent.value))
        events.extend(self._actions.act(intent, audio_s, spoken_at, heard))

    def _failed(self, audio_s: float, err: Exception) -> StageError:
        """One bad command must not stop the daemon: an error event and the "sorry" cue."""
        _LOGGER.debug("command failed", exc_info=True)
        self.player.earcon("sorry")
        return StageError(audio_s, f"{type(err).__name__}: {err}")


def _drain(messages: deque[str]) -> Iterator[str]:
    while messages:
        yield messages.popleft()
