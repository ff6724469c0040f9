"""Per-person enrollment: three synthetic people enroll by name behind one microphone, then
say "hey music" in held-out takes; the wake names the right person at least 90 % of the time
it names one, and a wrong one at most 3 % of the time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.events import Wake
from heymusic.wake.detector import WakeDetector
from heymusic.wake.personal import people_path
from tests.conftest import TEST_SEED

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

HELD_OUT_TAKES = 15


@pytest.mark.slow
def test_three_enrolled_people_are_told_apart_on_held_out_takes() -> None:
    from heymusic.training.wake.enroll import OTHER_PROMPTS, WAKE_TAKES, enroll
    from heymusic.training.wake.enroll_eval import Person

    rng = np.random.default_rng(TEST_SEED)
    first = Person.draw(rng)
    people = [first] + [
        dataclasses.replace(Person.draw(rng), band=first.band, floor_db=first.floor_db)
        for _ in range(2)
    ]  # one household, one microphone
    names = ["anna", "ben", "cleo"]
    settings = Settings()
    for name, person in zip(names, people, strict=True):
        takes = [("wake", person.take("hey music", rng)) for _ in range(WAKE_TAKES)]
        takes += [("other", person.take(text, rng)) for text in OTHER_PROMPTS]
        report = enroll(settings, takes, name)
    assert report["people"] == names
    assert people_path("hey_music").exists()

    detector = WakeDetector(
        Settings.model_validate({"wake": {"verifier": False, "asr_check": False}}), None
    )
    said: list[tuple[str, np.ndarray]] = []
    for _ in range(HELD_OUT_TAKES):
        for name, person in zip(names, people, strict=True):
            said.append((name, person.take("hey music", rng)))
    order = rng.permutation(len(said))
    gap = np.zeros(16000 * 2, dtype=np.int16)
    stream = np.concatenate([part for i in order for part in (said[i][1], gap)])
    ends_s = np.cumsum([len(said[i][1]) + len(gap) for i in order]) / 16000
    wakes = [e for e in detector.events(stream) if isinstance(e, Wake)]
    truth = [said[order[int(np.searchsorted(ends_s, w.audio_s))]][0] for w in wakes]
    named = [(w.person, t) for w, t in zip(wakes, truth, strict=True) if w.person]
    right = sum(p == t for p, t in named)
    wrong = len(named) - right
    note = f"{len(wakes)} wakes of {len(said)} takes, {len(named)} named, {right} right"
    print(note)  # the figures docs/profiles.md quotes (pytest -s)
    assert len(wakes) >= len(said) // 2 and len(named) >= len(wakes) // 2, note
    assert right >= 0.9 * len(named), note
    assert wrong <= 0.03 * len(wakes), note


def test_a_bad_name_is_one_line() -> None:
    from heymusic.training.wake.enroll import check_name

    assert check_name("Anna") == "anna"
    for bad in ("", "../etc", "a b", "9lives", "x" * 40):
        with pytest.raises(UserError, match="--name"):
            check_name(bad)


def test_the_identifier_file_is_checked_when_read(tmp_path: Path) -> None:
    from heymusic.wake.personal import SpeakerIdentifier

    bad = tmp_path / "people.npz"
    np.savez(bad, names=np.array(["anna"]), mean=np.zeros(96), scale=np.ones(96))
    with pytest.raises(UserError, match="enroll --name"):
        SpeakerIdentifier.load(bad)
