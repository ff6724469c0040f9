"""The daemon: no torch at import, errors inside a command, and `run` under systemd's signals."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from heymusic.config import Settings
from heymusic.events import Event, IntentEvent, PlayerCommand, StageError, Transcript
from heymusic.players.log import LogPlayer
from heymusic.service.assembly import NoRecommender, build_stages
from heymusic.service.event_log import EventLog
from heymusic.service.pipeline import Pipeline, Stages
from heymusic.speech.asr import Transcriber
from heymusic.speech.intents import IntentParser
from heymusic.speech.second_listen import RequestScorer
from heymusic.speech.vad import CommandRecorder
from heymusic.track import Track
from heymusic.wake.detector import WakeDetector
from tests.conftest import PROJECT_DIR, TEST_SEED, mix_noise, read_pcm

HEYMUSIC = PROJECT_DIR / ".venv" / "bin" / "heymusic"


def test_daemon_import_pulls_in_no_torch_or_transformers() -> None:
    code = (
        "import sys, heymusic.service.runner, heymusic.cli; "
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


class _BrokenSkipPlayer(LogPlayer):
    """A player whose device fails on "next", like a sound card pulled mid-command."""

    def next(self) -> None:
        raise OSError("output device vanished")


def _settings(whisper_dir: Path) -> Settings:
    return Settings.model_validate(
        {
            "wake": {"models": ["hey_jarvis_v0.1.onnx"], "verifier": False},
            "asr": {"model_dir": str(whisper_dir)},
        }
    )


def _wake_pause_command(synth: Callable[..., Path], text: str) -> np.ndarray:
    """ "hey jarvis", a pause (waiting for the cue, as people do), then the command."""
    wake = read_pcm(synth("hey jarvis", pad_before=1.0, pad_after=1.4))
    return np.concatenate([wake, read_pcm(synth(text, pad_before=0.0, pad_after=2.5))])


def test_a_failing_command_reports_and_the_daemon_goes_on(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    texts = ["skip this song", "play some jazz", "pause"]
    audio = np.concatenate([_wake_pause_command(synth, t) for t in texts])
    player = _BrokenSkipPlayer()
    pipeline = Pipeline(
        build_stages(_settings(whisper_dir), player, NoRecommender("no catalog yet; import one"))
    )
    events: list[Event] = []
    for start in range(0, len(audio) - 1279, 1280):
        events.extend(pipeline.feed(audio[start : start + 1280]))
    events.extend(pipeline.finish())

    intents = [e.name for e in events if isinstance(e, IntentEvent)]
    errors = [e.message for e in events if isinstance(e, StageError)]
    assert intents == ["skip", "play", "pause"]
    assert len(errors) == 2 and "output device vanished" in errors[0] and "no catalog" in errors[1]
    assert [e.action for e in events if isinstance(e, PlayerCommand)] == ["pause"]
    earcons = [arg for action, arg in player.commands if action == "earcon"]
    assert earcons.count("listening") == 3 and earcons.count("sorry") == 2
    assert [a for a, _ in player.commands].count("unduck") == 3  # every command ends unducked


def test_one_breath_command_gets_no_cue_over_it_and_still_counts(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    """Whisper confirms the wake while "hey jarvis, pause" goes on: no earcon (it would land
    on the command and hide words from the recognizer), the music still ducks."""
    audio = read_pcm(synth("hey jarvis, pause", pad_before=1.0, pad_after=2.5))
    player = _BrokenSkipPlayer()
    pipeline = Pipeline(build_stages(_settings(whisper_dir), player, NoRecommender("unused")))
    events: list[Event] = []
    for start in range(0, len(audio) - 1279, 1280):
        events.extend(pipeline.feed(audio[start : start + 1280]))
    events.extend(pipeline.finish())
    assert [e.name for e in events if isinstance(e, IntentEvent)] == ["pause"]
    actions = [a for a, _ in player.commands]
    assert "duck" in actions and ("earcon", "listening") not in player.commands


def test_the_verifier_is_told_when_the_player_plays(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    """The same "hey music, pause" is held to `verifier_threshold` while nothing plays and
    to `verifier_threshold_playing` once the player plays (bars of 1.0, which no verifier
    score reaches, and 0.0)."""
    settings = Settings.model_validate(
        {
            "wake": {"verifier_threshold": 1.0, "verifier_threshold_playing": 0.0},
            "asr": {"model_dir": str(whisper_dir)},
        }
    )
    player = LogPlayer()
    pipeline = Pipeline(build_stages(settings, player, NoRecommender("unused")))
    said = read_pcm(
        synth("hey music, pause", voice="en-gb-x-gbcwmd", pad_before=1.0, pad_after=2.5)
    )

    def intents() -> list[str]:
        events: list[Event] = []
        for start in range(0, len(said) - 1279, 1280):
            events.extend(pipeline.feed(said[start : start + 1280]))
        return [e.name for e in events if isinstance(e, IntentEvent)]

    assert intents() == []
    player.play([Track("t1", "Alpha", "A")])
    assert intents() == ["pause"]


def test_the_daemon_log_keeps_what_was_said_private(capsys: pytest.CaptureFixture[str]) -> None:
    EventLog(as_json=True, private=True)(Transcript(1.0, "play my secret song", 600.0))
    EventLog(as_json=True, private=True)(IntentEvent(1.0, "play", "my secret song"))
    EventLog(as_json=True, private=False)(Transcript(1.0, "play my secret song", 600.0))
    lines = capsys.readouterr().out.splitlines()
    assert "secret" not in lines[0] and "secret" not in lines[1] and "secret" in lines[2]


class _Notifications:
    """Reads the NOTIFY_SOCKET like systemd does, all the time (the daemon never blocks on it)."""

    def __init__(self, path: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self.got: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.extend(self._sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                continue

    def wait_for(self, message: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while message not in self.got and time.monotonic() < deadline:
            time.sleep(0.1)
        return message in self.got

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


def test_run_notifies_reloads_and_stops(
    tmp_path: Path, whisper_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    good = (
        '[wake]\nmodels = ["hey_jarvis_v0.1.onnx"]\nverifier = false\n'
        f'[asr]\nmodel_dir = "{whisper_dir}"\n[catalog]\nsource = ""\n'
    )
    config.write_text(good)
    notes = _Notifications(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    proc = subprocess.Popen(
        [
            str(HEYMUSIC),
            "--config",
            str(config),
            "run",
            "--input",
            "-",
            "--json",
            "--player",
            "log",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    assert proc.stdin is not None
    silence = np.zeros(16000, np.int16).tobytes()  # 1 s

    def feed(seconds: int) -> None:
        for _ in range(seconds):
            proc.stdin.write(silence)  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            time.sleep(0.2)

    try:
        assert notes.wait_for("READY=1", 120)
        feed(3)
        assert notes.wait_for("WATCHDOG=1", 10)
        config.write_text(good + "[vad]\nsilence_seconds = -1\n")
        proc.send_signal(signal.SIGHUP)
        feed(2)
        config.write_text(good.replace("verifier = false", "verifier = false\nthreshold = 0.6"))
        proc.send_signal(signal.SIGHUP)
        feed(12)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert notes.wait_for("STOPPING=1", 5)
    notes.close()
    text = out.decode()
    assert "config not reloaded" in text and "vad.silence_seconds" in text
    assert '"config reloaded"' in text


class _SpeakerPlayer(LogPlayer):
    """A player that makes sound: its "listening" cue must not reach the recognizer."""

    name = "speaker"


def _feed_noting_cues(
    pipeline: Pipeline, player: LogPlayer, audio: np.ndarray
) -> tuple[list[Event], list[int]]:
    """Every event of `audio` fed 80 ms at a time, and the samples where a "listening" cue
    was given (the end of the chunk it came on)."""
    events: list[Event] = []
    cues: list[int] = []
    for start in range(0, len(audio) - 1279, 1280):
        given = player.commands.count(("earcon", "listening"))
        events.extend(pipeline.feed(audio[start : start + 1280]))
        if player.commands.count(("earcon", "listening")) > given:
            cues.append(start + 1280)
    return events + pipeline.finish(), cues


def _voiced(audio: np.ndarray) -> np.ndarray:
    """Where a synthesized clip makes sound (espeak-ng pads its speech with some silence)."""
    return np.flatnonzero(np.abs(audio.astype(np.int32)) > 300)


def test_mic_audio_during_the_earcon_is_not_recorded(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    settings = Settings.model_validate(
        {
            "wake": {"models": ["hey_jarvis_v0.1.onnx"], "verifier": False},
            "asr": {"model_dir": str(whisper_dir)},
            "audio": {"earcon_mute_seconds": 0.4},
        }
    )
    wake = read_pcm(synth("hey jarvis", pad_before=2.5, pad_after=1.4))
    audio = mix_noise(np.concatenate([wake, read_pcm(synth("pause", pad_after=2.0))]), 20)
    player = _SpeakerPlayer()
    pipeline = Pipeline(build_stages(settings, player, NoRecommender("unused")))
    events, cues = _feed_noting_cues(pipeline, player, audio)
    wake_s = next(e.audio_s for e in events if e.type == "wake")
    assert len(cues) == 1 and 0 <= cues[0] / 16000 - wake_s <= 1.0
    utterance = pipeline.recorder.utterance()
    at = round(2.0 * 16000) + cues[0] - round((wake_s + 0.32) * 16000)  # pre-roll, then the wait
    assert not utterance[at : at + round(0.4 * 16000) - 1280].any(), "earcon time recorded"
    assert utterance[at + round(0.5 * 16000) :].any()


def test_the_cue_waits_for_a_pause_and_never_lands_on_a_command_said_in_one_breath(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    """A wake the verifier is sure of comes without Whisper's wait (forced here for every
    wake: the sure bar at the verifier's), often inside the short pause of "hey music, skip
    this song" said in one breath, and a cue there mutes the mic over "skip". The cue waits
    for a pause (CUE_PAUSE_S) and is given up when the person talks on: random voices,
    speeds, pauses and commands said in one breath get no cue; the same said after a
    pause, as people wait for the cue, get it soon after the phrase ends."""
    from heymusic.service.pipeline import CUE_PAUSE_S

    rng = random.Random(TEST_SEED)
    voices = ["en-us", "en-gb", "en-us+f3", "en-gb-x-rp+m3", "en-029", "en-us+klatt"]
    commands = ["skip this song", "pause", "stop the music", "next song", "volume down"]
    verifier_bar = Settings().wake.verifier_threshold
    settings = Settings.model_validate(
        {"wake": {"verifier_sure": verifier_bar}, "asr": {"model_dir": str(whisper_dir)}}
    )
    said = [(rng.choice(commands), rng.choice(voices), rng.randint(140, 180)) for _ in range(6)]
    one_breath, waited, phrase_ends = [], [], []
    for c, v, s in said:
        wake = read_pcm(synth("hey music", voice=v, speed=s, pad_before=1.0, pad_after=0.0))
        wake = wake[: _voiced(wake)[-1]]
        command = read_pcm(synth(c, voice=v, speed=s, pad_before=0.0, pad_after=2.0))
        pause = rng.uniform(0.1, CUE_PAUSE_S - 0.1)  # a comma's, shorter than a wait for the cue
        one_breath += [
            wake,
            np.zeros(round(pause * 16000), np.int16),
            command[_voiced(command)[0] :],
        ]
        phrase_ends.append(sum(map(len, waited)) + len(wake))
        waited += [wake, np.zeros(round(1.5 * 16000), np.int16), command]
    player = _SpeakerPlayer()
    pipeline = Pipeline(build_stages(settings, player, NoRecommender("unused")))
    events, cues = _feed_noting_cues(pipeline, player, np.concatenate(one_breath))
    assert cues == [], said
    understood = Counter(e.name for e in events if isinstance(e, IntentEvent))
    meant = Counter(IntentParser().parse(f"hey music, {c}").name for c, _, _ in said)
    assert (understood & meant).total() >= 4, (understood, said)

    player = _SpeakerPlayer()
    pipeline = Pipeline(build_stages(settings, player, NoRecommender("unused")))
    events, cues = _feed_noting_cues(pipeline, player, np.concatenate(waited))
    wakes = [round(e.audio_s * 16000) for e in events if e.type == "wake"]
    assert len(cues) == len(wakes) >= 5, said
    for cue, wake in zip(cues, wakes, strict=True):
        end = min(e for e in phrase_ends if e >= wake - 8000)
        assert CUE_PAUSE_S - 0.1 <= (cue - end) / 16000 <= CUE_PAUSE_S + 0.3, (cue - end) / 16000


def test_a_command_woken_on_a_satellite_is_heard_from_its_first_word(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    """The satellite heard the wake word (run-pipeline from ASR), cued and muted itself, and
    streams the command at once: no cue here and nothing muted, or "play" loses its "pl"."""
    settings = Settings.model_validate(
        {
            "wake": {"models": ["hey_jarvis_v0.1.onnx"], "verifier": False},
            "asr": {"model_dir": str(whisper_dir)},
            "audio": {"earcon_mute_seconds": 0.4},
        }
    )
    command = mix_noise(read_pcm(synth("skip this song", pad_before=0.0, pad_after=1.5)), 20)
    player = _SpeakerPlayer()
    pipeline = Pipeline(build_stages(settings, player, NoRecommender("unused")))
    pipeline.listen_now()
    events: list[Event] = []
    for start in range(0, len(command) - 1279, 1280):
        events.extend(pipeline.feed(command[start : start + 1280]))
    events.extend(pipeline.finish())
    assert ("earcon", "listening") not in player.commands
    head = round(0.4 * 16000)
    assert np.array_equal(pipeline.recorder.utterance()[:head], command[:head])
    assert [e.name for e in events if isinstance(e, IntentEvent)] == ["skip"], events


def test_a_pipeline_runs_on_the_stages_it_is_given(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    """Stages chosen here rather than by a config: the stock hey_jarvis model with no later
    checks (no Whisper given to the detector), and an intent parser stepping the volume by
    25 instead of the configured 10; the loop must use exactly these."""
    settings = _settings(whisper_dir)
    asr = Transcriber(settings, wake_phrase="hey jarvis")
    wake = WakeDetector(settings, whisper=None)
    player = LogPlayer()
    stages = Stages(
        wake=wake,
        recorder=CommandRecorder(settings.vad),
        asr=asr,
        second_listen=RequestScorer(asr.model),
        intents=IntentParser(wake.phrases, volume_step=25),
        recommender=NoRecommender("unused"),
        player=player,
        earcon_mute_seconds=0.0,
    )
    louder = random.Random(TEST_SEED).choice(["turn it up", "louder", "make it louder"])
    audio = _wake_pause_command(synth, louder)
    pipeline = Pipeline(stages)
    events: list[Event] = []
    for start in range(0, len(audio) - 1279, 1280):
        events.extend(pipeline.feed(audio[start : start + 1280]))
    events.extend(pipeline.finish())
    assert [e.name for e in events if isinstance(e, IntentEvent)] == ["volume"], events
    assert player.volume == 50 + 25
