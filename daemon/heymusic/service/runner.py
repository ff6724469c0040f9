"""Running the daemon: `simulate` over a file as fast as it goes, `run` in real time with
sd_notify, SIGTERM and SIGHUP (reload) around the loop."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from heymusic.audio.live import live_chunks
from heymusic.audio.sources import check_microphone, open_input
from heymusic.config import ConfigError, Settings, load_settings
from heymusic.errors import UserError
from heymusic.events import Notice, StageError
from heymusic.privacy import redact_private_logs
from heymusic.service.assembly import build, echo_canceller
from heymusic.service.event_log import EventLog
from heymusic.service.pipeline import Pipeline

_LOGGER = logging.getLogger(__name__)

WATCHDOG_SECONDS = 2.0
"""How often a progressing loop tells systemd it is alive (the unit's WatchdogSec is 30)."""


@dataclass(frozen=True)
class RunOptions:
    """What the command line chose for one run."""

    config: Path | None = None
    """The config file (None: the default), read again on SIGHUP."""
    input: str | None = None
    """A file, or "-" for raw PCM on stdin, instead of the microphone."""
    as_json: bool = False
    """Events as JSON lines on stdout instead of log lines."""
    player: str | None = None
    """Overrides `[player] kind`."""
    audio_out: str | None = None
    """The speaker when None; "null" discards; a .wav path records."""
    play_seconds: float = 0.0
    """`simulate`: how long what the player plays goes on after the input ends (`demo`)."""


def simulate(settings: Settings, options: RunOptions) -> int:
    """The daemon's loop over `options.input` as fast as it goes; transcripts always shown."""
    assert options.input is not None
    source = open_input(options.input)
    emit = EventLog(options.as_json, private=False, narrate=True)
    pipeline = build(settings, options.player or "log", options.audio_out)
    pipeline.wake.lead_in()
    try:
        for chunk in source.chunks():
            for event in pipeline.feed(chunk):
                emit(event)
        for event in pipeline.finish():
            emit(event)
        _let_it_play(pipeline, options.play_seconds)
    finally:
        source.close()
        pipeline.close()
    emit.close()
    return 0


def _let_it_play(pipeline: Pipeline, seconds: float) -> None:
    """Wait up to `seconds` while the player plays (it starts within a moment of the request)."""
    from heymusic.players.base import PlayerState

    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if time.monotonic() - start > 2.0 and pipeline.player.state is not PlayerState.PLAYING:
            return
        time.sleep(0.1)


class _Stop(BaseException):
    """SIGTERM/SIGINT: leave the loop, close devices, exit 0. A BaseException, so the
    per-command `except Exception` cannot swallow a SIGTERM that lands mid-command."""


def run(settings: Settings, options: RunOptions) -> int:
    """The always-on daemon: microphone (or `options.input`) in real time until SIGTERM."""
    import sdnotify

    if not options.input and not os.environ.get("NOTIFY_SOCKET"):
        # Fail fast, before loading models. As a service, wait for the mic instead (a USB
        # mic may be plugged in later; exiting would run into systemd's restart limit).
        check_microphone(settings.audio.input_device)
    if options.input and options.input != "-":
        open_input(options.input).close()  # unreadable: one line now, not after model loads
    notifier = sdnotify.SystemdNotifier()
    if notifier.socket is not None:  # a slow reader must never stall the audio loop
        notifier.socket.setblocking(False)
    reload_requested = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload_requested.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    emit = EventLog(options.as_json, private=not settings.log_transcripts)
    if not settings.log_transcripts:
        redact_private_logs()
    echo = echo_canceller(settings, options.player, options.input, options.audio_out, emit)
    pipeline = build(settings, options.player, options.audio_out, echo=echo)
    if options.input:  # a microphone has heard the room already; a file starts cold
        pipeline.wake.lead_in()
    # The lambda must see `pipeline` rebound by a reload: late binding is the point.
    audio_now = lambda: pipeline.audio_s  # noqa: E731
    try:
        chunks = live_chunks(
            options.input, settings, emit, audio_now, lambda: notifier.notify("WATCHDOG=1"), echo
        )
        notifier.notify("READY=1")
        _LOGGER.info("listening (%s)", options.input or "microphone")
        last_ping = 0.0
        for chunk in chunks:
            for event in pipeline.feed(chunk):
                emit(event)
            now = time.monotonic()
            if now - last_ping >= WATCHDOG_SECONDS:  # only while the loop progresses
                notifier.notify("WATCHDOG=1")
                last_ping = now
            if reload_requested.is_set():
                reload_requested.clear()
                pipeline, settings = _reload(options.config, pipeline, settings, emit)
    except (_Stop, KeyboardInterrupt):
        _LOGGER.info("stopping")
    finally:
        notifier.notify("STOPPING=1")
        pipeline.close()
        emit.close()
    return 0


def _reload(
    path: Path | None, pipeline: Pipeline, settings: Settings, emit: EventLog
) -> tuple[Pipeline, Settings]:
    """SIGHUP: load the config again; on any problem keep running with the old one."""
    try:
        new_settings = load_settings(path)
        new_pipeline = build(new_settings, None, None, old=pipeline)
    except (ConfigError, UserError) as err:
        emit(StageError(pipeline.audio_s, f"config not reloaded, keeping the old one: {err}"))
        return pipeline, settings
    emit(Notice(pipeline.audio_s, "config reloaded"))
    return new_pipeline, new_settings
