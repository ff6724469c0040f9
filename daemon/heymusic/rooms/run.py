"""`heymusic run` with a [rooms] section: the satellites and services instead of one mic.

The same daemon around it as the single-microphone loop (heymusic.service.runner):
sd_notify READY and WATCHDOG, SIGTERM stops cleanly, events as log lines or JSON lines
(with a "room" field).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from heymusic.config import Settings
from heymusic.events import Event
from heymusic.rooms.hub import Hub
from heymusic.service.assembly import build
from heymusic.service.event_log import EventLog
from heymusic.service.runner import WATCHDOG_SECONDS, RunOptions

_LOGGER = logging.getLogger(__name__)

ROOM_WHISPER_WORKERS = 2
"""Whisper passes at once with two satellites or more: rooms that speak together each get
one core, instead of waiting in turn for a pass on both (bench/rooms.py, docs/rooms.md)."""


def run_rooms(settings: Settings, options: RunOptions) -> int:
    """Every room until SIGTERM; `options.player`/`audio_out` apply to the home room."""
    import sdnotify

    notifier = sdnotify.SystemdNotifier()
    if notifier.socket is not None:
        notifier.socket.setblocking(False)
    emit = EventLog(options.as_json, private=not settings.log_transcripts)

    lock = threading.Lock()

    def report(room: str, event: Event) -> None:
        with lock:  # rooms report from their own threads: one whole line at a time
            emit(event, room=room)

    if "workers" not in settings.asr.model_fields_set and len(settings.rooms.satellite_uris()) > 1:
        asr = settings.asr.model_copy(update={"workers": ROOM_WHISPER_WORKERS})
        settings = settings.model_copy(update={"asr": asr})
    home = build(settings, options.player, options.audio_out)
    hub = Hub(settings, home, report)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await hub.start()
        notifier.notify("READY=1")
        _LOGGER.info("rooms: %s", ", ".join(hub.rooms))
        try:
            while not stop.is_set():
                notifier.notify("WATCHDOG=1")
                try:
                    await asyncio.wait_for(stop.wait(), WATCHDOG_SECONDS)
                except TimeoutError:
                    pass
        finally:
            _LOGGER.info("stopping")
            notifier.notify("STOPPING=1")
            await hub.stop()

    asyncio.run(main())
    return 0
