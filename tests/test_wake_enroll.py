"""`heymusic enroll`: a person's takes become a personal verifier the detector consults.

The person is a held-out synthetic voice (a random one per seed) behind their own
microphone; the verifier must tell their "hey music" from their own near-misses and
from other voices' near-misses, and the daemon must gate wakes on it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heymusic.config import Settings, load_settings
from heymusic.errors import UserError
from heymusic.events import Wake, WakeCandidate
from heymusic.training.wake.data import CONFUSABLES, Speaker, espeak_variants, to_int16
from heymusic.training.wake.enroll import OTHER_PROMPTS, _TakeCheck, clip_windows, save
from heymusic.training.wake.enroll_eval import Person
from heymusic.wake.detector import WakeDetector
from heymusic.wake.models import load_wake_model
from heymusic.wake.personal import FRAMES, PersonalVerifier, enroll_dir, personal_path
from tests.conftest import TEST_SEED

SR = 16000


def _person(seed: int) -> Person:
    """A held-out espeak voice (piper is slow to load for a test)."""
    rng = np.random.default_rng(seed)
    while True:
        person = Person.draw(rng)
        if person.speaker.engine == "espeak":
            return person


def _write(path: Path, audio: np.ndarray) -> Path:
    sf.write(str(path), audio, SR, subtype="PCM_16")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "heymusic", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def person() -> Person:
    return _person(TEST_SEED + 11)


def _enroll_wavs(person: Person, folder: Path, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    wake = [str(_write(folder / f"w{i}.wav", person.take("hey music", rng))) for i in range(6)]
    other = [
        str(_write(folder / f"o{i}.wav", person.take(t, rng))) for i, t in enumerate(OTHER_PROMPTS)
    ]
    return wake, other


def test_enroll_from_wavs_keeps_the_takes_and_scores_the_person(
    person: Person, tmp_path: Path
) -> None:
    wake, other = _enroll_wavs(person, tmp_path / "takes", TEST_SEED)
    done = _cli("enroll", "--wake-wav", *wake, "--other-wav", *other)
    assert done.returncode == 0, done.stderr
    kept = enroll_dir() / "hey_music"
    assert len(list(kept.glob("wake_*.wav"))) == 6 and len(list(kept.glob("other_*.wav"))) == 6
    verifier = PersonalVerifier.load(personal_path("hey_music"))
    model = load_wake_model([Path("models/hey_music.onnx").resolve()])
    rng = np.random.default_rng(TEST_SEED + 1)
    floor = person.room(SR, rng)

    def best(audio: np.ndarray, stage1: float) -> float:
        """The verifier's best score over the frames where the wake model scores >= `stage1`
        (0: it would never be asked)."""
        windows, _ = clip_windows(model, audio, stage1, to_int16(floor))
        return max((verifier.score(w) for w in windows), default=0.0)

    theirs = [best(person.take("hey music", rng), 0.5) for _ in range(4)]
    others = [_person(TEST_SEED + 100 + i) for i in range(8)]
    # It is mostly a speaker check: other voices score below the person, their "hey music"
    # too (the person's own near-misses are the shared verifier's and Whisper's job).
    # Near-misses are scored wherever stage 1 stirs (>= 0.1), more often than it is asked.
    near = [best(o.take(str(rng.choice(CONFUSABLES)), rng), 0.1) for o in others]
    their_phrase = [best(o.take("hey music", rng), 0.5) for o in others]
    below = np.mean([s < min(theirs) for s in near + their_phrase])
    assert min(theirs) > 0.5 and below >= 0.75, (theirs, near, their_phrase)
    # enrolling again (another person, another day) adds takes instead of replacing them
    assert _cli("enroll", "--wake-wav", *wake[:3], "--other-wav", other[0]).returncode == 0
    assert len(list(kept.glob("wake_*.wav"))) == 9


def test_enroll_records_one_take_per_prompt(tmp_path: Path, whisper_dir: Path) -> None:
    """The prompted path, fed a recording instead of the microphone (same VAD cuts; each
    wake take is checked by the daemon's own detector, Whisper included)."""
    config = tmp_path / "config.toml"
    config.write_text(f'[asr]\nmodel_dir = "{whisper_dir}"\n')
    settings = load_settings(config)
    check = _TakeCheck(settings, "hey music", 4)
    rng = np.random.default_rng(TEST_SEED + 2)
    # the second answer is not the phrase: it is asked for again
    texts = ["hey music", "good morning everyone", "hey music", "hey music", *OTHER_PROMPTS]
    for seed in range(TEST_SEED + 200, TEST_SEED + 210):
        # a person the detector hears: the prompts, not the detector's misses, are tested here
        person = _person(seed)
        takes = [person.take(t, rng) for t in texts]
        verdicts = [check(i, take) for i, take in enumerate(takes[:4])]
        if [v is None for v in verdicts] == [True, False, True, True]:
            break
    else:
        pytest.fail("no person of ten whose takes the detector judges as expected")
    gaps = [np.zeros(int(rng.uniform(1.0, 2.0) * SR), np.int16) for _ in texts]
    audio = np.concatenate([x for pair in zip(gaps, takes, strict=True) for x in pair])
    recording = str(_write(tmp_path / "r.wav", audio))
    done = _cli("--config", str(config), "enroll", "--takes", "3", "--input", recording)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("say:") == len(texts), done.stdout
    assert done.stdout.count('did not hear "hey music"') == 1, done.stdout
    kept = sorted((enroll_dir() / "hey_music").glob("*.wav"))
    assert [p.name.split("_")[0] for p in kept] == ["other"] * 6 + ["wake"] * 3
    for path in kept:  # each take holds one utterance: about as long as what was said
        seconds = sf.info(str(path)).duration
        assert 0.4 < seconds < 6.0, (path.name, seconds)
    assert personal_path("hey_music").exists()


def _fixed(score_sign: float) -> dict[str, np.ndarray]:
    n = FRAMES * 96
    return {
        "mean": np.zeros(n, np.float32),
        "scale": np.ones(n, np.float32),
        "coef": np.zeros(n, np.float32),
        "intercept": np.float32(10 * score_sign),
    }


@pytest.mark.parametrize(("sign", "override"), [(-1.0, 0.9), (1.0, 1.0), (1.0, 0.9)])
def test_the_detector_asks_the_personal_verifier(
    sign: float, override: float, tmp_path: Path
) -> None:
    """A verifier that says no to everything turns every wake into a candidate; one that says
    yes changes nothing, unless it may override the shared verifier: then it wakes on what
    that one turned down too. Real audio, real models; only the verifier's weights are fixed."""
    from heymusic.training.wake.data import say

    rng = np.random.default_rng(TEST_SEED + 3)
    variants = [v for v in espeak_variants() if Speaker("espeak", "en-029", v).heldout]
    parts = []
    for _ in range(3):
        spk = Speaker("espeak", "en-029", str(rng.choice(variants)))
        clip = say("hey music", spk, rng)
        parts += [np.zeros(int(1.5 * SR), np.float32), 0.1 * clip / (np.abs(clip).max() + 1e-9)]
    audio = to_int16(np.concatenate([*parts, np.zeros(2 * SR, np.float32)]))
    settings = Settings.model_validate(
        {"wake": {"asr_check": False, "personal_override": override}}
    )

    plain = WakeDetector(settings).events(audio)
    wakes = [e for e in plain if isinstance(e, Wake)]
    assert len(wakes) >= 2, plain
    save(_fixed(sign), personal_path("hey_music"))
    gated = WakeDetector(settings).events(audio)
    gated_wakes = [e.audio_s for e in gated if isinstance(e, Wake)]
    if sign > 0 and override == 1.0:
        assert gated_wakes == [e.audio_s for e in wakes]
    elif sign > 0:
        # nothing over stage 1 is turned down now: each burst wakes at its first such frame
        assert not [e for e in gated if isinstance(e, WakeCandidate)], gated
        for event in plain:
            assert any(0 <= event.audio_s - t <= 1.0 for t in gated_wakes), (plain, gated)
    else:
        assert not [e for e in gated if isinstance(e, Wake)]
        # one candidate per burst: the first stage that said no (the shared verifier may
        # turn down a burst's first frame before the personal one sees a later one)
        candidates = [e for e in gated if isinstance(e, WakeCandidate)]
        assert len(candidates) >= len(wakes), gated
        personal = [e.personal_score for e in candidates if e.personal_score is not None]
        assert personal and max(personal) < 0.01, gated


def test_a_damaged_personal_verifier_is_one_clear_error(tmp_path: Path) -> None:
    path = personal_path("hey_music")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not numpy")
    with pytest.raises(UserError, match="heymusic enroll"):
        WakeDetector(Settings())
    done = _cli("simulate", str(_write(tmp_path / "s.wav", np.zeros(SR, np.int16))))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("heymusic: ")]
    assert len(errors) == 1 and "heymusic enroll" in errors[0], done.stderr


def test_enroll_remove_forgets(person: Person, tmp_path: Path) -> None:
    save(_fixed(1.0), personal_path("hey_music"))
    (enroll_dir() / "hey_music").mkdir()
    assert "personal verifier for hey_music" in _cli("doctor").stdout
    done = _cli("enroll", "--remove")
    assert done.returncode == 0, done.stderr
    assert not personal_path("hey_music").exists()
    assert not (enroll_dir() / "hey_music").exists()
    assert "nobody enrolled" in _cli("doctor").stdout


def test_too_few_heard_takes_is_one_clear_error(tmp_path: Path) -> None:
    silence = _write(tmp_path / "s.wav", np.zeros(SR, np.int16))
    done = _cli("enroll", "--wake-wav", str(silence), "--other-wav", str(silence))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("heymusic: ")]
    assert len(errors) == 1 and "heymusic enroll" in errors[0], done.stderr
    assert done.stderr.strip().splitlines()[-1] == errors[0]
    assert not personal_path("hey_music").exists()


def test_enroll_without_its_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An install without `[enroll]` (scikit-learn) is told so before anything is recorded."""
    from heymusic.cli import main

    monkeypatch.setitem(sys.modules, "sklearn", None)  # find_spec: not installed
    take = _write(tmp_path / "t.wav", np.zeros(SR, np.int16))
    assert main(["enroll", "--wake-wav", str(take), "--other-wav", str(take)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("heymusic: enrollment needs sklearn") and "[enroll]" in line, line
    assert not (enroll_dir() / "hey_music").exists()
