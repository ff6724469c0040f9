"""A second listen for title requests the text alone cannot settle.

Whisper base often mishears titles and artists ("play it lonely by any action" for "I Get
Lonely by Janet Jackson"), and the fuzzy matcher then finds the song only with a weak
score, below the bar that keeps a song the catalog lacks from being played by mistake.
Here the audio decides instead: each near match is forced on Whisper as the rest of the
transcript ("Hey music, play" + " I Get Lonely by Janet Jackson."), and its likelihood is
set against what Whisper wrote itself. One batched decoder pass on the audio encoded once.
Whisper is loaded for commands anyway, and scoring a forced text needs no training data,
as the wake word's last check does (heymusic.wake.asr_check).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from heymusic.speech.whisper import encoded_batch, start_tokens

PAD_S = 10.0
"""Seconds the command is padded to before encoding (longer commands keep their length plus
1 s, up to Whisper's 30 s). Whisper was trained on 30 s, but the choice of near match came
out the same at 15 s and at 10 s on the 320 title requests that chose the bars (87 songs
found at 15 s, 86 at 10 s), and the encoder takes 0.13 s here at 10 s, 0.21 s at 15 s and
0.67 s at 30 s."""
Heard = Callable[[list[str]], list[float]]
"""Requests -> how much less likely each is than Whisper's own words, for one command's
audio (`RequestScorer.losses` with the audio and transcript bound); empty when they cannot
be compared."""
VERBS = ("play", "put on", "queue", "start", "listen to")
"""Where a request starts in a transcript: after the first of the verbs the matcher drops,
or of the other ways to ask for music the scorer is given ("I'd like to hear")."""


def once_each(heard: Heard) -> Heard:
    """`heard`, scoring each list of requests once: an unclear command's check and its answer
    ask the audio the same question (heymusic.service.actions.unclear)."""
    asked: dict[tuple[str, ...], list[float]] = {}

    def losses(requests: list[str]) -> list[float]:
        key = tuple(requests)
        if key not in asked:
            asked[key] = heard(requests)
        return asked[key]

    return losses


class RequestScorer:
    """How well alternative requests fit a command's audio, against Whisper's own words."""

    def __init__(self, whisper: Any, verbs: Sequence[str] = ()) -> None:
        """`whisper`: a loaded faster_whisper.WhisperModel (the one commands use); `verbs`:
        the ways to ask for music besides VERBS (heymusic.speech.intents' play prefixes),
        so a title asked for as "give me ..." is checked as one asked for as "play ..."."""
        self._whisper = whisper
        others = sorted({v for v in verbs if v not in VERBS}, key=len, reverse=True)
        spelled = [r"\W+".join(_apostrophe(w) for w in v.split()) for v in [*VERBS, *others]]
        self._verb = re.compile(rf"\b(?:{'|'.join(spelled)})\b", re.IGNORECASE)
        tok = whisper.hf_tokenizer
        self._tok = tok
        self._sot = start_tokens(whisper)

    def losses(self, audio: np.ndarray, transcript: str, requests: list[str]) -> list[float]:
        """For each request ("I Get Lonely by Janet Jackson"), how much less likely Whisper
        finds it than the words it wrote after the verb, in nats (0: as likely; negative:
        more likely). Empty when the transcript has no verb to put them after, or there is
        next to no audio (under 0.1 s).

        Each is scored as the transcript up to its verb, then " <request>.", so the words
        before it (the wake phrase, however misheard) weigh the same for all.
        """
        verb = self._verb.search(transcript)
        if verb is None or not requests:
            return []
        scored = self.likelihoods(
            audio,
            transcript[: verb.end()],
            [transcript[verb.end() :]] + [f" {r}." for r in requests],
        )
        if not scored:
            return []
        own = scored[0][0]
        return [own - ll for ll, _ in scored[1:]]

    def likelihoods(
        self, audio: np.ndarray, prefix: str, texts: list[str]
    ) -> list[tuple[float, int]]:
        """(log-likelihood in nats, tokens) of each text as the transcript after `prefix`
        (both as written: leading space, punctuation), in one batched pass; empty under
        0.1 s of audio. The control check (heymusic.speech.control_listen) puts control
        phrases after the wake phrase this way."""
        fe = self._whisper.feature_extractor
        if not texts or audio.size < fe.sampling_rate // 10:
            return []
        clip = audio.astype(np.float32) / 32768.0
        seconds = min(max(PAD_S, clip.size / fe.sampling_rate + 1.0), 30.0)
        start = self._ids(prefix)
        ids = [self._ids(text) for text in texts]
        batch, frames = encoded_batch(self._whisper, clip, seconds, len(ids))
        results = self._whisper.model.align(
            batch,
            self._sot,
            [start + text for text in ids],
            min(frames, clip.size // fe.hop_length),
        )
        return [
            (
                float(
                    np.log(np.asarray(r.text_token_probs[len(start) :], np.float64) + 1e-12).sum()
                ),
                len(text),
            )
            for r, text in zip(results, ids, strict=True)
        ]

    def _ids(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)


def _apostrophe(word: str) -> str:
    """A word of the table (apostrophes dropped) as a transcript may write it: "id" also
    as "I'd", "lets" as "let's"."""
    return "'?".join(re.escape(c) for c in word)
