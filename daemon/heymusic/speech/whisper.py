"""Whisper as a judge of given texts: the audio encoded once, then forced texts scored.

The wake word's last check (heymusic.wake.asr_check) and the second listen
(heymusic.speech.second_listen) both ask the loaded Whisper how likely some texts are for
a short clip; this is the part they share: the start-of-transcript tokens, and the clip
padded with silence to fewer seconds than Whisper's 30 (each caller says how many and
why), encoded once and repeated for a batch of texts. The command transcript
(heymusic.speech.asr) pads its features its own way and shares the encoder call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_START = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")


def start_tokens(whisper: Any) -> list[int]:
    """The token ids an English transcript without timestamps starts with."""
    return [whisper.hf_tokenizer.token_to_id(t) for t in _START]


def encoded_batch(whisper: Any, clip: np.ndarray, seconds: float, copies: int) -> tuple[Any, int]:
    """(encoder output for `copies` texts, mel frames): float32 16 kHz `clip` padded to
    `seconds` and encoded once.

    Args:
        whisper: a loaded faster_whisper.WhisperModel.
        clip: float32 samples in [-1, 1].
        seconds: padded length; Whisper was trained on 30 s, shorter is faster.
        copies: rows of the batch (one per text to score).
    """
    import ctranslate2

    fe = whisper.feature_extractor
    mel = fe(clip, padding=fe.n_samples)[:, : round(seconds * fe.sampling_rate / fe.hop_length)]
    encoded = np.asarray(encode(whisper, mel))
    batch = np.ascontiguousarray(np.repeat(encoded, copies, axis=0))
    return ctranslate2.StorageView.from_array(batch), int(mel.shape[1])


def encode(whisper: Any, mel: np.ndarray) -> Any:
    """Whisper's encoder output (a ctranslate2 StorageView) for one clip's mel features
    [n_mels, frames], already padded to the length wanted."""
    import ctranslate2

    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], np.float32))
    return whisper.model.encode(features, to_cpu=False)
