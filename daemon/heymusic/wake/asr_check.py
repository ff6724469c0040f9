"""The wake word's last check: does Whisper hear the wake phrase in the candidate's audio?

Whisper is loaded for commands anyway; here it scores a forced text instead of decoding.
The candidate's audio (1.5 s before the first stage fired, 0.3 s after) is encoded once,
padded with silence to `PAD_S` (not Whisper's 30 s: see there), and each common spelling of
the phrase ("Hey music", "Hey, music", ...) is forced on it. The score is the
best spelling's weakest token probability: "hey mister" scores high on "Hey" and low on
"music", "play some music" low on "Hey". That probability is then weighed by how likely
the phrase's last word ends where the phrase does: "hey musician" gives "Hey music" a fair
probability (the audio starts like it) and then Whisper's next token is "ian" (see
`AsrCheck.forced`). Free decoding was the weak way (FINDINGS: ~10
false wakes/h let through, 40-65 % of true ones dropped); the forced likelihood needs no
training data, so it does not share the synthetic voices' blind spots with the first
stages. On held-out candidates the weakest-token score alone kept 95 % of true wakes while
passing 10 % of false ones (an earlier stop; docs/wake-word.md for the word-end weighting).
"""

from __future__ import annotations

import itertools
import string
from typing import Any, NamedTuple

import numpy as np

from heymusic.audio.format import SAMPLE_RATE
from heymusic.speech.whisper import encoded_batch, start_tokens

BEFORE_S = 1.5
"""Audio kept before the first stage fires: the whole phrase, little of what came before
(an earlier word in the window becomes the first token and sinks the score)."""
AFTER_S = 0.3
"""Audio waited for after it fires: the first stage often fires before "music" ends. 0.3 s,
not the 0.5 s it was: on wake-eval's 6.37 h run it missed one clean phrase of 150 more and one
fewer in noise, and woke once more in 6.37 h, while the wake came 0.26 s sooner at the median
and at p95 (0.53 / 0.80 s after the phrase ends against 0.79 / 1.05 s; docs/wake-word.md)."""
PAD_S = 15.0
"""Seconds the window (1.8 s) is padded to before encoding. Whisper was trained on 30 s and
unpadded 2 s gave garbage, but at 15 s the encoder runs 3.5x faster (0.26 s instead of
0.91 s here), so the wake reaches the user sooner, and on wake-eval's held-out run (6 h of
negatives) the scores sat on the same misses-vs-false-wakes curve as at 30 s (10 s was
slightly worse over music). The scores are a little lower: thresholds tuned at 30 s do not
carry over."""
FIRST_WORD_ODDS = 1 / 300
"""Below these odds of the transcript starting with the phrase's first word rather than its
second, the first word is not there: "music" said alone. Not higher, because a real "hey
music" after other speech can fall to 1/400 (Whisper writes "The music", "in music"): at
1/150 wake-eval missed two more phrases. At 1/300 its offline sweep gave the same misses
and false wakes as without the bar at the default and at the eval's pick (the streaming
detector, whose Whisper window now matches the eval's, gives the same at the pick); it turned
down 5 of the 11 times "music" said alone woke the detector (60 held-out speakers; docs/wake-word.md)."""
SCORING = f"pad{PAD_S:g}s_after{AFTER_S:g}s_wordend_first{1 / FIRST_WORD_ODDS:g}"
"""Names how a score is made (the padding, the word-end weighting, the first-word bar).
wake-eval caches scores under it, so scores made another way are never reused."""


def _cases(word: str) -> set[str]:
    """How a transcript may write a word after the phrase's first: {"music", "Music"}."""
    return {word.lower(), word.capitalize()}


def spellings(phrase: str) -> list[str]:
    """How a transcript may start with the phrase: "hey music" -> " Hey music", " Hey, Music"..."""
    words = phrase.split()
    if not words:
        return []
    head = " " + words[0].capitalize()  # the window starts with the phrase: a sentence start
    rest = [_cases(w) for w in words[1:]]
    out = {head + sep + " ".join(tail) for tail in itertools.product(*rest) for sep in (" ", ", ")}
    return sorted(out) if rest else [head]


class Forced(NamedTuple):
    """Whisper's view of the phrase forced on a window (`AsrCheck.forced`)."""

    heard: float
    ends: float
    first_word_odds: float


class AsrCheck:
    """Scores audio ending `AFTER_S` after a first-stage fire: ~1 = Whisper hears the phrase."""

    window_seconds = BEFORE_S + AFTER_S
    after_seconds = AFTER_S

    def __init__(self, whisper: Any, phrase: str) -> None:
        """`whisper`: a loaded faster_whisper.WhisperModel (the one commands use)."""
        self._whisper = whisper
        tok = whisper.hf_tokenizer
        sot = start_tokens(whisper)
        spelled = spellings(phrase)
        self._texts = [tok.encode(s, add_special_tokens=False).ids for s in spelled]
        self._prompts = [sot + text for text in self._texts]
        self._last_word_at = [
            len(tok.encode(s.rsplit(" ", 1)[0], add_special_tokens=False).ids) for s in spelled
        ]
        """Where each spelling's last word starts, in tokens."""
        vocab = [tok.id_to_token(i) or "" for i in range(tok.get_vocab_size())]
        last = phrase.split()[-1].lower() if phrase.split() else ""
        self._longer = np.array([_starts_longer(t, last) for t in vocab], dtype=bool)
        """Word-initial tokens of longer words that start with the last: " musician"."""
        self._glued = np.array([t[:1] in _LOWER for t in vocab], dtype=bool)
        """Tokens that carry on the word before them (no leading space): "ian", "al"."""
        self._first = sorted({text[0] for text in self._texts})
        """The phrase's first token: " Hey"."""
        words = phrase.split()
        self._second = (
            sorted({tok.encode(f" {w}", add_special_tokens=False).ids[0] for w in _cases(words[1])})
            if len(words) > 1
            else []
        )
        """What a transcript without the first word starts with: " Music", " music"."""
        self.phrase = phrase

    def score(self, audio: np.ndarray) -> float:
        """int16 16 kHz audio, the last `window_seconds` of it is checked: `heard` x `ends`,
        0 when Whisper hears the words start without the phrase's first word."""
        forced = self.forced(audio)
        if forced.first_word_odds < FIRST_WORD_ODDS:
            return 0.0
        return forced.heard * forced.ends

    def forced(self, audio: np.ndarray) -> Forced:
        """The best spelling's weakest token probability (`heard`), how sure Whisper is that
        the phrase's last word ends where the phrase does (`ends`), and the odds that the
        words start with the phrase's first word rather than its second (`first_word_odds`).

        The forced likelihood only asks whether the audio starts like the phrase, and a
        longer word that starts with the last one does: 4 of 4 held-out speakers woke the
        detector saying "hey musician" alone. Whisper tells it two ways, depending on the
        spelling: where " musician" is one token it competes with " music" at that place,
        and after " Music" it goes on with "ian". So per spelling: the word's share of the
        tokens that are it or a longer word starting with it, times the chance that the next
        token does not carry the word on; the least over spellings. A wake phrase is whole
        words, and a pause, punctuation or a new word (a command) all end it.

        "music" said alone scores "Hey music" as high as a Caribbean voice's real "hey music"
        (Whisper hears its "hey" as " K" or " I"): a few in 10,000 for " Hey". What tells
        them apart is what Whisper would write first instead: " Music" for the one, another
        word for the other. All spellings in one batched decoder pass, on the audio encoded once.
        """
        clip = audio[-round(self.window_seconds * SAMPLE_RATE) :].astype(np.float32) / 32768.0
        if clip.size < SAMPLE_RATE // 10 or not self._texts:
            return Forced(0.0, 1.0, 1.0)
        batch, _ = encoded_batch(self._whisper, clip, PAD_S, len(self._prompts))
        results = self._whisper.model.generate(
            batch,
            self._prompts,
            beam_size=1,
            max_length=max(map(len, self._prompts)) + 4,  # where generation stops is not exact
            return_logits_vocab=True,
            suppress_blank=False,
            suppress_tokens=[],
        )
        heard, ends = 0.0, 1.0
        for text, start, result in zip(self._texts, self._last_word_at, results, strict=True):
            steps = [_softmax(s) for s in result.logits[0][: len(text) + 1]]
            heard = max(heard, min(float(steps[k][t]) for k, t in enumerate(text)))
            here = steps[start]
            word = here[text[start]]
            longer = here[: self._longer.size][self._longer].sum()
            glued = (  # no step after the phrase (decoding stopped there): no sign it goes on
                steps[len(text)][: self._glued.size][self._glued].sum()
                if len(steps) > len(text)
                else 0.0
            )
            ends = min(ends, float(word / (word + longer + 1e-12) * (1.0 - glued)))
        first = _softmax(results[0].logits[0][0])  # the same for every spelling
        odds = float(first[self._first].max() / (first[self._second].sum() + 1e-12))
        return Forced(heard, ends, odds if self._second else float("inf"))


def _softmax(logits: Any) -> np.ndarray:
    values = np.asarray(logits, np.float64)
    exp = np.exp(values - values.max())
    return exp / exp.sum()


_LOWER = frozenset(string.ascii_lowercase)
"""A byte-level BPE token starting with one of these starts mid-word (no "Ġ", a space)."""


def _starts_longer(token: str, word: str) -> bool:
    """ "Ġmusician" for "music": a token that starts a word, a longer one beginning with `word`."""
    text = token[1:].lower() if token.startswith("Ġ") else ""
    return bool(word) and text.startswith(word) and text[len(word) :].isalpha()
