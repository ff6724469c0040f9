"""The default player: local files and Spotify preview clips through the speaker.

One worker thread owns the queue, the decoder and the sink; the public methods
only post a command and return. The worker writes 20 ms blocks, so a command
takes effect within a block (or one network read while a clip downloads).
Earcons and spoken replies are mixed over the music, which is ducked under them.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import miniaudio
import numpy as np
import requests

from heymusic.audio.sink import AudioSink
from heymusic.config import Settings
from heymusic.players.base import MessageCallback, MoreLike, PlayerState, describe
from heymusic.players.earcons import EARCON_NAMES, make_earcon
from heymusic.players.queue import QueuedPlayer
from heymusic.players.voice import Voice
from heymusic.privacy import Private
from heymusic.track import Track

_LOGGER = logging.getLogger(__name__)

NOTHING_PLAYABLE = (
    "none of these songs can be played here: log in to Spotify "
    "('heymusic spotify login') or import a music folder "
    "('heymusic catalog import DIR')"
)
_MAX_DOWNLOAD_BYTES = 20_000_000
#: Radio gives up after this many unplayable suggestions in a row.
_MAX_FAILURES_IN_ROW = 10


def local_source(track: Track) -> bool:
    """True when the track has audio this machine can play itself (a file or a preview URL)."""
    return bool(track.path and Path(track.path).is_file()) or bool(track.preview_url)


class _Skip(Exception):
    """This track cannot be played; the message says why (logged, then the next one plays)."""


def volume_gain(percent: int) -> float:
    """Loudness-like curve: 50 % is about -12 dB, 10 % about -40 dB."""
    return (max(0, min(percent, 100)) / 100.0) ** 2


class PreviewPlayer(QueuedPlayer):
    """Plays tracks from their local file, else their preview URL, through an `AudioSink`."""

    name = "preview"

    def __init__(
        self,
        settings: Settings,
        sink: AudioSink,
        on_message: MessageCallback | None = None,
        more_like: MoreLike | None = None,
        voice: Voice | None = None,
        state_file: Path | None = None,
    ) -> None:
        """`state_file`: where volume and queue are kept (None: the daemon's one player's)."""
        super().__init__(settings, on_message, more_like, state_file)
        self._sink = sink
        self._voice = voice if voice is not None else (Voice() if self._player_cfg.tts else None)
        self._block = sink.rate // 50
        self._duck_gain = 10 ** (self._player_cfg.duck_db / 20)
        self._source: Generator[np.ndarray, None, None] | None = None
        self._ducked = False
        self._gain = 0.0
        self._overlay = np.zeros((0, sink.channels), np.float32)
        self._played: list[Track] = []
        """Tracks that started since the last "play": the radio's seeds."""
        self._failures_in_row = 0
        self._last_problem = ""
        self._http = requests.Session()
        self._tts = ThreadPoolExecutor(1, thread_name_prefix="heymusic-tts")
        self._closed = False
        self._start_worker("heymusic-player")

    # --- the Player interface beyond the queue's ---------------------------------------
    def can_play(self, track: Track) -> bool:
        """Whether `track` has a file or preview clip (the recommender searches those only)."""
        return local_source(track)

    def earcon(self, name: str) -> None:
        if name not in EARCON_NAMES:
            _LOGGER.warning("unknown earcon %r (known: %s)", name, ", ".join(EARCON_NAMES))
            return
        self._post("overlay", self._to_sink(make_earcon(name, self._sink.rate), self._sink.rate))

    def say(self, text: str) -> None:
        """Speak `text` over the music (logged either way; `[player] tts = false`: log only)."""
        _LOGGER.info("say: %s", Private(text))
        if self._voice is not None and not self._closed:
            self._tts.submit(self._speak, text)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._tts.shutdown(wait=False, cancel_futures=True)
        self._join(timeout=5)
        self._sink.close()

    # --- helpers running off the worker ---------------------------------------------------
    def _speak(self, text: str) -> None:
        assert self._voice is not None
        result = self._voice.synthesize(text)
        if result is not None:
            audio, rate = result
            self._post("overlay", self._to_sink(audio * 0.8, rate))

    def _to_sink(self, mono: np.ndarray, rate: int) -> np.ndarray:
        if rate != self._sink.rate:
            import soxr

            mono = soxr.resample(mono, rate, self._sink.rate)
        return np.repeat(mono.astype(np.float32)[:, None], self._sink.channels, axis=1)

    # --- the worker -----------------------------------------------------------------------
    def _wait_seconds(self) -> float:
        idle = self._state is not PlayerState.PLAYING and not len(self._overlay)
        return 0.2 if idle else 0.0

    def _idle(self) -> None:
        try:
            self._step()
        except Exception:
            _LOGGER.exception("player failed; stopping playback")
            self._close_source()
            self._state = PlayerState.STOPPED

    def _closing(self) -> None:
        self._close_source()

    def _handle(self, name: str, arg: Any, asked: float) -> None:
        if name == "play":
            self._close_source()
            self._queue, self._pos, self._played, self._failures_in_row = arg, 0, [], 0
            self._repeat, self._last_song = False, None
            if any(local_source(t) for t in arg):
                self._state = PlayerState.PLAYING
            else:
                self._state = PlayerState.STOPPED
                self._report(NOTHING_PLAYABLE)
            self._save()
        elif name == "enqueue":
            self._queue = self._queue + arg
            if self._state is PlayerState.STOPPED:
                self._state = PlayerState.PLAYING
        elif name in ("next", "previous") and self._queue:
            self._close_source()
            self._pos = self._pos + 1 if name == "next" else max(self._pos - 1, 0)
            self._state = PlayerState.PLAYING
            if self._pos >= len(self._queue):
                self._queue_ran_out()
        elif name == "restart" and self._state is not PlayerState.STOPPED:
            self._close_source()  # reopened at its first block by the next step
            self._state = PlayerState.PLAYING
        elif name == "pause" and self._state is PlayerState.PLAYING:
            self._state = PlayerState.PAUSED
        elif name == "resume" and self._state is not PlayerState.PLAYING and self._queue:
            self._state = PlayerState.PLAYING  # after a restart: the saved queue, saved position
        elif name == "stop_after":
            self._last_song = self.now_playing()
        elif name == "repeat":
            self._repeat = arg
        elif name == "stop":
            self._stop_all()
        elif name in ("volume", "volume_delta"):
            self._apply_volume(name, arg)
            _LOGGER.info("volume %d%%", self._volume)
        elif name == "duck":
            self._ducked = arg
        elif name == "overlay":
            self._overlay = np.concatenate([self._overlay, arg])

    def _step(self) -> None:
        music = None
        if self._state is PlayerState.PLAYING:
            if self._source is None:
                self._start_current()
            if self._source is not None:
                music = self._next_music()
        overlay_on = len(self._overlay) > 0
        if music is None and not overlay_on:
            return
        frames = len(music) if music is not None else min(self._block, len(self._overlay))
        out = np.zeros((frames, self._sink.channels), np.float32)
        if music is not None:
            target = volume_gain(self._volume)
            if self._ducked or overlay_on:
                target *= self._duck_gain
            ramp = np.linspace(self._gain, target, frames, dtype=np.float32)[:, None]
            out += music * ramp  # ramped so volume changes do not click
            self._gain = target
        if overlay_on:
            n = min(frames, len(self._overlay))
            out[:n] += self._overlay[:n]
            self._overlay = self._overlay[n:]
        self._sink.write((np.clip(out, -1.0, 1.0) * 32767).astype(np.int16))

    def _next_music(self) -> np.ndarray | None:
        assert self._source is not None
        try:
            return next(self._source)
        except StopIteration:
            pass
        except miniaudio.MiniaudioError as err:
            _LOGGER.warning("stopped decoding %s: %s", describe(self._queue[self._pos]), err)
        self._close_source()
        if self._repeat and self._last_song is None:
            return None  # the same song, reopened by the next step
        ended, self._pos = self._queue[self._pos], self._pos + 1
        if ended is self._last_song:  # "stop after this song": the rest waits for "resume"
            self._last_song, self._state = None, PlayerState.STOPPED
        elif self._pos >= len(self._queue):
            self._queue_ran_out()
        self._save()
        return None

    def _start_current(self) -> None:
        while self._state is PlayerState.PLAYING and not self._interrupt.is_set():
            if self._pos >= len(self._queue):
                self._queue_ran_out()
                continue
            track = self._queue[self._pos]
            try:
                self._source = self._open(track)
            except _Skip as err:
                _LOGGER.warning("skipping %s: %s", describe(track), err)
                self._last_problem = str(err)
                self._failures_in_row += 1
                self._pos += 1
                if self._failures_in_row >= _MAX_FAILURES_IN_ROW:
                    self._report(
                        f"radio: {self._failures_in_row} songs in a row would not play "
                        f"({self._last_problem}); stopping"
                    )
                    self._stop_all()
                continue
            if self._source is not None:
                _LOGGER.info("playing %s", describe(track))
                self._played.append(track)
                self._failures_in_row = 0
                self._gain = 0.0  # fade in from silence
            return

    def _queue_ran_out(self) -> None:
        """Radio: more like what played, until "stop"; else stop at the end."""
        if not self._played:  # nothing of this request played: no radio, say why
            if self._queue:
                self._report(
                    f"could not play any of these songs ({self._last_problem}); "
                    "check the network, or log in to Spotify"
                )
            self._stop_all()
            return
        more = self._radio_songs(self._played[-1], local_source, self._queue + self._played)
        if more:
            self._queue = self._queue + more
            return
        self._stop_all()

    def _stop_all(self) -> None:
        self._close_source()
        self._repeat, self._last_song = False, None
        self._queue, self._pos, self._state = [], 0, PlayerState.STOPPED
        self._save()

    def _open(self, track: Track) -> Generator[np.ndarray, None, None] | None:
        """A decoder positioned at the first block; None if a newer command interrupted."""
        fmt, channels, rate = miniaudio.SampleFormat.SIGNED16, self._sink.channels, self._sink.rate
        try:
            if track.path and Path(track.path).is_file():
                blocks = miniaudio.stream_file(track.path, fmt, channels, rate, self._block)
            elif track.preview_url:
                data = self._download(track.preview_url)
                if data is None:
                    return None
                blocks = miniaudio.stream_memory(data, fmt, channels, rate, self._block)
            else:
                raise _Skip("no local file and no preview clip")
            first = next(blocks)
        except (miniaudio.MiniaudioError, StopIteration) as err:
            raise _Skip(f"cannot decode its audio ({err or 'empty'})") from err
        return (
            np.frombuffer(b, np.int16).reshape(-1, channels).astype(np.float32) / 32768.0
            for b in itertools.chain([first], blocks)
        )

    def _download(self, url: str) -> bytes | None:
        """The whole clip (previews are ~30 s, well under 1 MB), read in chunks so that
        skip/stop interrupt it; None when interrupted."""
        timeout = self._player_cfg.download_timeout_seconds
        deadline = time.monotonic() + 3 * timeout
        data = bytearray()
        try:
            with self._http.get(url, stream=True, timeout=timeout) as resp:
                resp.raise_for_status()
                for chunk in resp.iter_content(32768):
                    data += chunk
                    if self._interrupt.is_set():
                        return None
                    if time.monotonic() > deadline or len(data) > _MAX_DOWNLOAD_BYTES:
                        raise _Skip("download too slow or too large")
        except requests.RequestException as err:
            raise _Skip(f"download failed ({type(err).__name__}: {err})") from err
        return bytes(data)

    def _close_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
