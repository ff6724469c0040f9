"""The wake word's last check: does Whisper hear the wake phrase in the candidate's audio?

Whisper is loaded for commands anyway; here it scores a forced text instead of decoding.
The candidate's audio (1.5 s before the first stage fired, 0.5 s after) is encoded once,
padded with silence to `PAD_S` (not Whisper's 30 s: see there), and each common spelling of
the phrase ("Hey music", "Hey, music", ...) is aligned to it. The score is the
best spelling's weakest token probability: "hey mister" scores high on "Hey" and low on
"music", "play some music" low on "Hey". Free decoding was the weak way (FINDINGS: ~10
false wakes/h let through, 40-65 % of true ones dropped); the forced likelihood needs no
training data, so it does not share the synthetic voices' blind spots with the first
stages. On held-out candidates it kept 95 % of true wakes while passing 10 % of false ones.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

BEFORE_S = 1.5
"""Audio kept before the first stage fires: the whole phrase, little of what came before
(an earlier word in the window becomes the first token and sinks the score)."""
AFTER_S = 0.5
"""Audio waited for after it fires: the first stage often fires before "music" ends."""
PAD_S = 15.0
"""Seconds the 2 s window is padded to before encoding. Whisper was trained on 30 s and
unpadded 2 s gave garbage, but at 15 s the encoder runs 3.5x faster (0.26 s instead of
0.91 s here), so the wake reaches the user sooner, and on wake-eval's held-out run (6 h of
negatives) the scores sat on the same misses-vs-false-wakes curve as at 30 s (10 s was
slightly worse over music). The scores are a little lower: thresholds tuned at 30 s do not
carry over."""
_SOT = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")


def spellings(phrase: str) -> list[str]:
    """How a transcript may start with the phrase: "hey music" -> " Hey music", " Hey, Music"..."""
    words = phrase.split()
    if not words:
        return []
    head = " " + words[0].capitalize()  # the window starts with the phrase: a sentence start
    rest = [{w.lower(), w.capitalize()} for w in words[1:]]
    out = {head + sep + " ".join(tail) for tail in itertools.product(*rest) for sep in (" ", ", ")}
    return sorted(out) if rest else [head]


class AsrCheck:
    """Scores audio ending `AFTER_S` after a first-stage fire: ~1 = Whisper hears the phrase."""

    window_seconds = BEFORE_S + AFTER_S
    after_seconds = AFTER_S

    def __init__(self, whisper: Any, phrase: str) -> None:
        """`whisper`: a loaded faster_whisper.WhisperModel (the one commands use)."""
        self._whisper = whisper
        tok = whisper.hf_tokenizer
        self._sot = [tok.token_to_id(t) for t in _SOT]
        self._texts = [tok.encode(s, add_special_tokens=False).ids for s in spellings(phrase)]
        self.phrase = phrase

    def score(self, audio: np.ndarray) -> float:
        """int16 16 kHz audio, the last `window_seconds` of it is checked."""
        import ctranslate2

        clip = audio[-round(self.window_seconds * 16000) :].astype(np.float32) / 32768.0
        if clip.size < 1600 or not self._texts:
            return 0.0
        fe = self._whisper.feature_extractor
        mel = fe(clip, padding=fe.n_samples)[:, : round(PAD_S * fe.sampling_rate / fe.hop_length)]
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], np.float32))
        model = self._whisper.model
        encoded = model.encode(features, to_cpu=False)
        frames = clip.size // fe.hop_length
        best = 0.0
        for text in self._texts:  # one at a time: a batch multiplies the decoder's memory
            probs = model.align(encoded, self._sot, [text], [frames])[0].text_token_probs
            best = max(best, float(min(probs)))
        return best
