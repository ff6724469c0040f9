"""The personal wake verifier: a check trained on the household's own voices.

`heymusic enroll` (heymusic.training.wake.enroll) records a person saying the wake phrase a few times and a few other
things (near-misses like "hey mister", "play some music"), and fits a logistic regression
over openWakeWord's speech embeddings of the frames where the wake model fires, as
openWakeWord's own custom verifier does. The daemon asks it about every first-stage
candidate, before Whisper: a candidate that does not sound like an enrolled person is
dropped, and one that surely does passes even if the shipped verifier doubts it (voices
the shipped model hears poorly). Unlike openWakeWord's pickle, the weights are a plain
.npz (nothing executes on load), and the daemon needs only numpy to score them.

The recordings stay in the state dir, so enrolling again (another person, a new mic)
adds to them and retrains on all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from heymusic.config import Settings, state_dir
from heymusic.errors import UserError

_LOGGER = logging.getLogger(__name__)

PERSONAL_SUFFIX = "_personal.npz"
PEOPLE_SUFFIX = "_people.npz"
FRAMES = 16
"""Embeddings (80 ms each) the personal verifier reads: the first stage's own window."""


def enroll_dir() -> Path:
    """Recordings (per wake model) and personal verifiers."""
    return state_dir() / "enroll"


def personal_path(model: str) -> Path:
    return enroll_dir() / f"{model}{PERSONAL_SUFFIX}"


def people_path(model: str) -> Path:
    return enroll_dir() / f"{model}{PEOPLE_SUFFIX}"


class PersonalVerifier:
    """~1 = an enrolled person saying the phrase; numpy only (mean, scale, weights)."""

    frames = FRAMES

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(weights["mean"], np.float32).reshape(-1)
        self.scale = np.asarray(weights["scale"], np.float32).reshape(-1)
        self.coef = np.asarray(weights["coef"], np.float32).reshape(-1)
        self.intercept = float(weights["intercept"])
        if not (self.mean.size == self.scale.size == self.coef.size == FRAMES * 96):
            raise ValueError(f"weights for {self.coef.size} values, not {FRAMES} x 96")

    @classmethod
    def load(cls, path: Path) -> PersonalVerifier:
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls({k: data[k] for k in ("mean", "scale", "coef", "intercept")})
        except (OSError, ValueError, KeyError) as err:
            raise UserError(
                f"personal wake verifier {path} cannot be read ({err}); run `heymusic enroll` "
                "again, or set [wake] personal = false"
            ) from err

    def score(self, embeddings: np.ndarray) -> float:
        """Score of the last `frames` of (n, 96) embeddings (padded at a stream start)."""
        emb = np.asarray(embeddings, np.float32).reshape(-1, 96)
        if len(emb) == 0:
            return 0.0
        if len(emb) < self.frames:
            emb = np.concatenate([np.repeat(emb[:1], self.frames - len(emb), axis=0), emb])
        x = (emb[-self.frames :].reshape(-1) - self.mean) / self.scale
        return float(1 / (1 + np.exp(-(x @ self.coef + self.intercept))))


def load_personal(settings: Settings, models: Sequence[str]) -> dict[str, PersonalVerifier]:
    """The personal verifier of each loaded wake model that has been enrolled."""
    if not settings.wake.personal:
        return {}
    out = {
        name: PersonalVerifier.load(personal_path(name))
        for name in models
        if personal_path(name).exists()
    }
    for name in out:
        _LOGGER.info("personal wake verifier for %s: %s", name, personal_path(name))
    return out


class SpeakerIdentifier:
    """Which enrolled person said the phrase: a softmax over the mean of the fire window's
    embeddings (`heymusic enroll --name`); numpy only. openWakeWord's embeddings carry the
    voice as well as the words: on held-out takes of three synthetic people it named the
    right one (docs/profiles.md)."""

    frames = FRAMES

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.names = [str(n) for n in np.asarray(weights["names"]).reshape(-1)]
        self.mean = np.asarray(weights["mean"], np.float32).reshape(-1)
        self.scale = np.asarray(weights["scale"], np.float32).reshape(-1)
        coef = np.asarray(weights["coef"], np.float32).reshape(-1, 96)
        intercept = np.asarray(weights["intercept"], np.float32).reshape(-1)
        if len(coef) == 1:  # two people: scikit-learn keeps one side of the sigmoid
            coef = (np.vstack([-coef, coef]) / 2).astype(np.float32)
            intercept = (np.array([-1.0, 1.0]) * intercept / 2).astype(np.float32)
        self.coef, self.intercept = coef, intercept
        if not (len(self.names) == len(self.coef) == len(self.intercept) >= 2):
            raise ValueError(f"{len(self.names)} names for {len(self.coef)} weight rows")
        if not (self.mean.size == self.scale.size == 96):
            raise ValueError("weights for other than 96 embedding values")

    @classmethod
    def load(cls, path: Path) -> SpeakerIdentifier:
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls({k: data[k] for k in ("names", "mean", "scale", "coef", "intercept")})
        except (OSError, ValueError, KeyError) as err:
            raise UserError(
                f"the enrolled people's voices {path} cannot be read ({err}); run "
                "`heymusic enroll --name NAME` again, or set [wake] personal = false"
            ) from err

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        emb = np.asarray(embeddings, np.float32).reshape(-1, 96)[-self.frames :]
        x = (emb.mean(axis=0) - self.mean) / self.scale
        z = self.coef @ x + self.intercept
        p = np.exp(z - z.max())
        return np.asarray(p / p.sum())

    def identify(self, embeddings: np.ndarray, threshold: float) -> str | None:
        """The person, when the identifier is at least `threshold` sure; else None."""
        if len(embeddings) == 0:
            return None
        p = self.probabilities(embeddings)
        best = int(np.argmax(p))
        return self.names[best] if p[best] >= threshold else None


def load_people(settings: Settings, models: Sequence[str]) -> dict[str, SpeakerIdentifier]:
    """The people identifier of each loaded wake model for which two or more people enrolled
    by name."""
    if not settings.wake.personal:
        return {}
    return {
        name: SpeakerIdentifier.load(people_path(name))
        for name in models
        if people_path(name).exists()
    }
