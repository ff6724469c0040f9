"""The Spotify Web API player: plays on the user's Spotify Connect device (Premium).

`SpotifyApi` makes the calls: each voice command gets a budget (`[spotify]
timeout_seconds`, 3 s) for all its calls, retries and waits, and every failure
becomes one `SpotifyFailure` line saying what to do. `SpotifyPlayer` runs the
commands on its own thread and reports failures through `on_message`, so
nothing here ever blocks the audio loop or ends the daemon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
import spotipy
from spotipy.exceptions import SpotifyException
from spotipy.oauth2 import SpotifyOauthError

from heymusic.config import Settings, state_dir
from heymusic.players.base import MessageCallback, MoreLike, PlayerState
from heymusic.players.preview import PreviewPlayer
from heymusic.players.queue import QueuedPlayer
from heymusic.players.spotify_auth import TokenCache, make_auth
from heymusic.privacy import Private
from heymusic.track import Track

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

LOGIN = "Spotify login is missing or expired: run 'heymusic spotify login'"
PREMIUM = "Spotify only lets Premium accounts control playback; upgrade, or use the preview player"
NO_DEVICE = (
    "no Spotify device is on: open Spotify on your phone or computer (or start "
    "raspotify/librespot on the Pi), play anything once, then ask again"
)
BUSY = "Spotify is busy; try again in a moment"
NOT_ON_SPOTIFY = "none of these songs has a Spotify id; import a music folder or pick others"
#: While playing, look this often whether our last track has started (to queue the radio).
POLL_SECONDS = 20.0
#: "Stop after this song" pauses the device this long before the song's end: a little late
#: and the next song would be heard starting.
END_MARGIN_SECONDS = 0.5
#: Budget for lowering/restoring the volume around a command. Every command's budget counts
#: from when it was asked, so a slow duck ahead of it eats into it: give up on the duck
#: early. The wake is confirmed by Whisper ~0.8 s after the phrase and a one-breath
#: "pause" is asked ~0.7 s later.
DUCK_SECONDS = 0.5


class SpotifyFailure(Exception):
    """One line for the person; `status`/`reason` from Spotify when it answered."""

    def __init__(self, line: str, status: int = 0, reason: str = "") -> None:
        super().__init__(line)
        self.status, self.reason = status, reason


def _retry_after(headers: Any) -> float:
    try:
        return max(0.0, float((headers or {}).get("Retry-After", 1)))
    except ValueError:
        return 1.0


class SpotifyApi:
    """spotipy with our own retry policy: bounded by the command's deadline, not by count."""

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self._cfg = settings.spotify
        self.auth = make_auth(settings)
        prefix = (
            self._cfg.api_base if self._cfg.api_base.endswith("/") else self._cfg.api_base + "/"
        )
        # A plain session: spotipy's own urllib3 Retry would sleep past our budget.
        self.sp = spotipy.Spotify(
            auth_manager=self.auth,
            requests_session=session or requests.Session(),
            requests_timeout=self._cfg.timeout_seconds,
            retries=0,
            status_retries=0,
        )
        self.sp.prefix = prefix  # spotipy's attribute for the API base
        self._deadline = 0.0
        self._device_id: str | None = None
        self.begin()

    def begin(self, seconds: float | None = None, since: float | None = None) -> None:
        """Start a new command's budget (default `[spotify] timeout_seconds`), counted
        from `since` (a `time.monotonic()` reading; default now)."""
        budget = self._cfg.timeout_seconds if seconds is None else seconds
        start = time.monotonic() if since is None else since
        self._deadline = start + min(budget, self._cfg.timeout_seconds)

    def call(self, fn: Callable[[spotipy.Spotify], T]) -> T:
        """Run one Web API call within the budget: refresh once on 401, wait out a short
        Retry-After, back off on 5xx and network errors; else raise `SpotifyFailure`."""
        refreshed, delay = False, 0.2
        while True:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0.05:
                raise SpotifyFailure(BUSY)
            self.sp.requests_timeout = remaining
            self.auth.requests_timeout = remaining
            token = TokenCache().get_cached_token()
            if not token or not token.get("access_token"):
                raise SpotifyFailure(LOGIN)  # never let spotipy fall into its interactive login
            try:
                return fn(self.sp)
            except SpotifyException as err:
                status, reason = err.http_status, str(err.reason or "")
                if status == 401 and not refreshed:
                    refreshed = True
                    self._refresh(token)
                    continue
                if status == 401:
                    raise SpotifyFailure(LOGIN, status) from None
                if status == 403:
                    line = (
                        PREMIUM
                        if reason in ("", "PREMIUM_REQUIRED")
                        else f"Spotify refused that ({reason.lower().replace('_', ' ')})"
                    )
                    raise SpotifyFailure(line, status, reason) from None
                if status == 404:
                    self._device_id = None
                    raise SpotifyFailure(NO_DEVICE, status, reason) from None
                if status == 429:
                    wait = _retry_after(err.headers)
                    if time.monotonic() + wait < self._deadline - 0.05:
                        _LOGGER.info("Spotify rate limit: retrying in %.1f s", wait)
                        time.sleep(wait)
                        continue
                    raise SpotifyFailure(BUSY, status) from None
                if status < 500:
                    raise SpotifyFailure(
                        f"Spotify refused the request ({status}: {err.msg})", status, reason
                    ) from None
                problem = f"Spotify had an error ({status})"
            except SpotifyOauthError as err:
                raise SpotifyFailure(LOGIN) from err
            except requests.RequestException as err:
                problem = f"cannot reach Spotify ({type(err).__name__})"
            if time.monotonic() + delay >= self._deadline:
                raise SpotifyFailure(f"{problem}; try again in a moment")
            _LOGGER.info("%s; retrying in %.1f s", problem, delay)
            time.sleep(delay)
            delay *= 2

    def _refresh(self, token: dict[str, Any]) -> None:
        if not token.get("refresh_token"):
            raise SpotifyFailure(LOGIN)
        if not self._cfg.client_id:
            raise SpotifyFailure(
                "the Spotify token expired and refreshing it needs [spotify] "
                "client_id: set it, then run 'heymusic spotify login'"
            )
        try:
            self.auth.refresh_access_token(token["refresh_token"])
        except SpotifyOauthError as err:
            raise SpotifyFailure(LOGIN) from err
        except requests.RequestException as err:
            raise SpotifyFailure(
                f"cannot reach Spotify's login server ({type(err).__name__}); try again in a moment"
            ) from err

    def devices(self) -> list[dict[str, Any]]:
        result = self.call(lambda sp: sp.devices()) or {}
        return list(result.get("devices") or [])

    def device_id(self) -> str | None:
        """The configured device by name; else None (Spotify's active device) or, once
        nothing was active, the device picked then."""
        wanted = self._cfg.device
        if self._device_id or not wanted:
            return self._device_id
        devices = self.devices()
        found = [d for d in devices if wanted.lower() in str(d.get("name", "")).lower()]
        if not found:
            names = ", ".join(str(d.get("name")) for d in devices) or "none"
            raise SpotifyFailure(
                f"Spotify device '{wanted}' is not on (on now: {names}); "
                "start it or change [spotify] device"
            )
        self._device_id = found[0].get("id")
        return self._device_id

    def control(self, fn: Callable[[spotipy.Spotify, str | None], T]) -> T:
        """A playback call on our device. When no device is configured and none is active
        (404), play on the first one that is on (Spotify moves playback there)."""
        device = self.device_id()
        try:
            return self.call(lambda sp: fn(sp, device))
        except SpotifyFailure as err:
            if err.status != 404 or self._cfg.device:
                raise
        devices = self.devices()
        found = [d for d in devices if d.get("is_active")] or devices
        if not found:
            raise SpotifyFailure(NO_DEVICE, 404)
        self._device_id = found[0].get("id")
        return self.call(lambda sp: fn(sp, self._device_id))


class SpotifyPlayer(QueuedPlayer):
    """Drives a Spotify Connect device; earcons and spoken replies go to a local `speaker`."""

    name = "spotify"

    def __init__(
        self,
        settings: Settings,
        on_message: MessageCallback | None = None,
        more_like: MoreLike | None = None,
        speaker: PreviewPlayer | None = None,
        api: SpotifyApi | None = None,
        state_file: Path | None = None,
    ) -> None:
        """`state_file`: its volume and queue (None: the daemon's one Spotify player's)."""
        state = state_file or state_dir() / "spotify_player.json"
        super().__init__(settings, on_message, more_like, state)
        self._cfg = settings.spotify
        self._speaker = speaker
        self._api = api or SpotifyApi(settings)
        self._ducked = False
        """The device volume is lowered by us right now."""
        self._stop_at: float | None = None
        """When to pause for "stop after this song" (time.monotonic)."""
        self._start_worker("heymusic-spotify")

    # --- the Player interface beyond the queue's ---------------------------------------
    def earcon(self, name: str) -> None:
        if self._speaker is not None:
            self._speaker.earcon(name)

    def say(self, text: str) -> None:
        if self._speaker is not None:
            self._speaker.say(text)
        else:
            _LOGGER.info("say (no speaker): %s", Private(text))

    def close(self) -> None:
        # A request in flight may use its whole budget; a stop (SIGTERM) must not wait for it:
        # the state was saved when it changed, and the worker is a daemon thread.
        self._join(timeout=1.0)
        if self._speaker is not None:
            self._speaker.close()

    # --- the worker -----------------------------------------------------------------------
    def _wait_seconds(self) -> float | None:
        polling = self._state is PlayerState.PLAYING and self._player_cfg.radio
        waits = [POLL_SECONDS] if polling else []
        if self._stop_at is not None:
            waits.append(max(0.0, self._stop_at - time.monotonic()))
        return min(waits, default=None)

    def _idle(self) -> None:
        due = self._stop_at is not None and time.monotonic() >= self._stop_at
        self._handle("song_end" if due else "poll", None, time.monotonic())

    def _handle(self, name: str, arg: Any, asked: float) -> None:
        """Run one command within its budget, counted from when it was `asked` (time spent
        queued behind a slow duck or poll is part of it); a failure is told once."""
        self._api.begin(DUCK_SECONDS if name == "duck" else None, since=asked)
        try:
            self._command(name, arg)
        except SpotifyFailure as err:
            if name in ("stop", "pause") and err.status == 403 and err.reason:
                _LOGGER.info("Spotify: nothing to pause (%s)", err.reason)
            elif name in ("duck", "poll", "song_end"):
                _LOGGER.warning("Spotify %s: %s", name, err)  # no need to interrupt anyone
            else:
                self._report(str(err))

    def _command(self, name: str, arg: Any) -> None:
        api = self._api
        if name in ("play", "next", "previous", "stop"):
            self._stop_at = self._last_song = None  # "stop after this song" named another
        if name == "play":
            uris = [t.uri for t in arg if t.uri]
            if not uris:
                raise SpotifyFailure(NOT_ON_SPOTIFY)
            if self._repeat:  # a new request is not the song on repeat
                api.control(lambda sp, dev: sp.repeat("context", device_id=dev))
                self._repeat = False
            if self._cfg.mode == "play":
                api.control(lambda sp, dev: sp.start_playback(device_id=dev, uris=uris))
            else:
                for uri in uris:
                    self._queue_uri(uri)
            self._queue, self._pos, self._state = [t for t in arg if t.uri], 0, PlayerState.PLAYING
            self._save()
        elif name == "enqueue":
            self._add_to_queue(arg)
        elif name in ("next", "previous"):
            if name == "next":
                api.control(lambda sp, dev: sp.next_track(device_id=dev))
                self._pos = min(self._pos + 1, len(self._queue))
            else:
                api.control(lambda sp, dev: sp.previous_track(device_id=dev))
                self._pos = max(self._pos - 1, 0)
            self._state = PlayerState.PLAYING
            self._save()
            self._maybe_radio()
        elif name == "restart" and self._state is not PlayerState.STOPPED:
            api.control(lambda sp, dev: sp.seek_track(0, device_id=dev))
            if self._state is PlayerState.PAUSED:  # "start over" wants to hear it
                api.control(lambda sp, dev: sp.start_playback(device_id=dev))
                self._state = PlayerState.PLAYING
        elif name == "pause":
            api.control(lambda sp, dev: sp.pause_playback(device_id=dev))
            self._state = PlayerState.PAUSED
        elif name == "resume":
            api.control(lambda sp, dev: sp.start_playback(device_id=dev))
            self._state = PlayerState.PLAYING
        elif name == "stop":
            self._queue, self._pos, self._state = [], 0, PlayerState.STOPPED
            self._save()
            api.control(lambda sp, dev: sp.pause_playback(device_id=dev))
        elif name == "repeat":
            api.control(lambda sp, dev: sp.repeat("track" if arg else "context", device_id=dev))
            self._repeat = arg
        elif name == "stop_after":
            self._last_song = self.now_playing()
            self._stop_at = self._look_again(self._seconds_left())
        elif name == "song_end":
            self._at_song_end()
        elif name in ("volume", "volume_delta"):
            self._apply_volume(name, arg)
            self._send_volume(self._volume)
        elif name == "duck" and arg and not self._ducked and self._state is PlayerState.PLAYING:
            # Same -dB as the speaker: volume percent is ~amplitude², so halve the dB.
            self._ducked = True  # set first: a failed call must not leave it down for good
            self._send_volume(round(self._volume * 10 ** (self._player_cfg.duck_db / 40)))
        elif name == "duck" and not arg and self._ducked:
            self._ducked = False  # only what we lowered gets restored
            self._send_volume(self._volume)
        elif name == "poll":
            self._maybe_radio(poll=True)

    def _seconds_left(self) -> tuple[str | None, float | None]:
        """(the device's song, seconds until it ends; None while paused or of no length)."""
        current = self._api.call(lambda sp: sp.currently_playing()) or {}
        item = current.get("item") or {}
        length = item.get("duration_ms")
        if not current.get("is_playing") or not isinstance(length, int):
            return item.get("uri"), None
        return item.get("uri"), (length - int(current.get("progress_ms") or 0)) / 1000.0

    @staticmethod
    def _look_again(song: tuple[str | None, float | None]) -> float:
        """When to look for the song's end: just before it, or after a poll's wait when the
        device does not say (paused, or no length)."""
        left = song[1]
        wait = POLL_SECONDS if left is None else max(0.0, left - END_MARGIN_SECONDS)
        return time.monotonic() + wait

    def _at_song_end(self) -> None:
        """Pause the device once the song "stop after this song" named has ended; while it
        still plays (paused or sought meanwhile) look again later."""
        song = self._seconds_left()
        still = self._last_song is not None and song[0] == self._last_song.uri
        if still and (song[1] is None or song[1] > 2 * END_MARGIN_SECONDS):
            self._stop_at = self._look_again(song)
            return
        self._stop_at, self._last_song = None, None
        self._api.control(lambda sp, dev: sp.pause_playback(device_id=dev))
        self._pos, self._state = self._pos + 1, PlayerState.STOPPED
        self._save()

    def _send_volume(self, percent: int) -> None:
        self._api.control(lambda sp, dev: sp.volume(percent, device_id=dev))

    def _queue_uri(self, uri: str) -> None:
        self._api.control(lambda sp, dev: sp.add_to_queue(uri, device_id=dev))

    def _add_to_queue(self, tracks: list[Track]) -> None:
        for track in tracks:
            if track.uri:
                self._queue_uri(track.uri)
                self._queue = self._queue + [track]

    def _maybe_radio(self, poll: bool = False) -> None:
        """Once our last track plays, queue more like it on the device (radio)."""
        if not (self._player_cfg.radio and self._more_like and self._queue):
            return
        if poll:
            current = self._api.call(lambda sp: sp.currently_playing()) or {}
            uri = (current.get("item") or {}).get("uri")
            uris = [t.uri for t in self._queue]
            if uri in uris:
                self._pos = uris.index(uri)
        if self._pos < len(self._queue) - 1:
            return
        self._add_to_queue(self._radio_songs(self._queue[-1], lambda t: bool(t.uri), self._queue))
