"""Every room over one set of models, and the Wyoming services around them.

The home pipeline is built as `heymusic run` builds its one (Whisper, wake models,
recommender, this machine's player); each satellite's room gets a pipeline of its own over
the same Whisper, intents and recommender (heymusic.service.assembly.room_pipeline), with a
preview player that plays to that satellite's speaker and keeps its own volume and queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from wyoming.server import AsyncServer

from heymusic.config import Settings, state_dir
from heymusic.events import Event
from heymusic.players.auto import AutoPlayer
from heymusic.players.base import Player
from heymusic.players.preview import PreviewPlayer
from heymusic.players.spotify import SpotifyPlayer
from heymusic.players.spotify_auth import logged_in
from heymusic.players.voice import Voice
from heymusic.rooms.asr_service import AsrHandler
from heymusic.rooms.conversation import ConversationHandler
from heymusic.rooms.room import Room
from heymusic.rooms.satellite import SatelliteLink, SatelliteSink
from heymusic.rooms.targets import named_rooms
from heymusic.rooms.wake_service import WakeHandler
from heymusic.rooms.wyoming_server import start_server
from heymusic.service.assembly import NoRecommender, room_pipeline
from heymusic.service.pipeline import Pipeline, Routed

_LOGGER = logging.getLogger(__name__)

#: Called on a room's thread with (room name, event) for every event.
Report = Callable[[str, Event], None]


class Hub:
    """The rooms, their satellites and heymusic's Wyoming services."""

    def __init__(self, settings: Settings, home: Pipeline, report: Report) -> None:
        """`home`: the pipeline of this machine (text requests for it, models for all)."""
        self.settings = settings
        self._report = report
        self.rooms: dict[str, Room] = {}
        self.links: dict[str, SatelliteLink] = {}
        self._servers: list[AsyncServer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._home = home
        self._voice = Voice() if settings.player.tts else None
        """One reply voice for every room (piper is ~60 MB)."""
        cfg = settings.rooms
        for name, uri in cfg.satellite_uris().items():
            link = SatelliteLink(name, uri, cfg.max_frame_bytes, cfg.retry_seconds)
            room = self._add(name, self._satellite_pipeline(name, link), link)
            link.on_audio, link.on_listen = room.feed, room.listen_now
            link.on_stream_end = room.end_stream
            self.links[name] = link
        if cfg.default_room not in self.rooms:
            self._add(cfg.default_room, home, None)

    def _satellite_pipeline(self, name: str, link: SatelliteLink) -> Pipeline:
        messages: deque[str] = deque(maxlen=100)
        recommender = self._home.recommender
        more_like = None if isinstance(recommender, NoRecommender) else recommender.more_like
        state = state_dir() / "rooms" / _file_name(name)
        speaker = PreviewPlayer(
            self.settings,
            SatelliteSink(link),
            messages.append,
            more_like,
            voice=self._voice,
            state_file=state.with_suffix(".json"),
        )
        player: Player = speaker
        if device := self.settings.rooms.spotify_device(name):
            if logged_in(self.settings):
                spotify_cfg = self.settings.spotify.model_copy(update={"device": device})
                settings = self.settings.model_copy(update={"spotify": spotify_cfg})
                spotify = SpotifyPlayer(
                    settings,
                    messages.append,
                    more_like,
                    speaker,
                    state_file=state.with_suffix(".spotify.json"),
                )
                player = AutoPlayer(speaker, spotify, messages.append)
            else:
                _LOGGER.warning(
                    "room %s: Spotify device %r set, but not logged in ('heymusic spotify "
                    "login'): previews and local files only",
                    name,
                    device,
                )
        return room_pipeline(self.settings, self._home, player, messages)

    def _add(self, name: str, pipeline: Pipeline, link: SatelliteLink | None) -> Room:
        def on_events(room: Room, events: list[Event]) -> None:
            for event in events:
                self._report(room.name, event)
            if link is not None:
                link.tell(events)

        self.rooms[name] = room = Room(name, pipeline, on_events)
        pipeline.router = functools.partial(self._route, name)
        return room

    def _route(self, source: str, text: str) -> Routed | None:
        """A command from `source` that names rooms: the others get it as text (each answers
        and reports on its own thread; nobody waits), `source` acts on it when named."""
        found = named_rooms(text, list(self.rooms))
        if found is None:
            return None
        command, targets = found
        elsewhere = tuple(name for name in targets if name != source)
        for name in elsewhere:
            self.rooms[name].text(command)
        return Routed(command if source in targets else None, elsewhere)

    def room_for(self, context: dict[str, Any]) -> Room:
        """The room a request's context names ("room" or "area"), else the default room."""
        for key in ("room", "area"):
            named = context.get(key)
            if isinstance(named, str) and named in self.rooms:
                return self.rooms[named]
        return self.rooms[self.settings.rooms.default_room]

    async def start(self) -> None:
        """Call every satellite and open the services; returns once they listen."""
        cfg = self.settings.rooms
        for link in self.links.values():
            self._tasks.append(asyncio.create_task(link.run(), name=f"satellite-{link.room}"))
        if cfg.conversation_port:
            conversation = functools.partial(
                ConversationHandler,
                room_for=self.room_for,
                max_frame_bytes=cfg.max_frame_bytes,
            )
            self._servers.append(await start_server(cfg.host, cfg.conversation_port, conversation))
            _LOGGER.info("conversation service on tcp://%s:%d", cfg.host, cfg.conversation_port)
        if cfg.wake_port:
            wake = functools.partial(
                WakeHandler,
                settings=self.settings,
                whisper=self._home.asr.model,
                max_frame_bytes=cfg.max_frame_bytes,
            )
            self._servers.append(await start_server(cfg.host, cfg.wake_port, wake))
            _LOGGER.info("wake word service on tcp://%s:%d", cfg.host, cfg.wake_port)
        if cfg.asr_port:
            asr = functools.partial(
                AsrHandler, transcriber=self._home.asr, max_frame_bytes=cfg.max_frame_bytes
            )
            self._servers.append(await start_server(cfg.host, cfg.asr_port, asr))
            _LOGGER.info("speech-to-text service on tcp://%s:%d", cfg.host, cfg.asr_port)

    async def stop(self) -> None:
        # Cancelled again until done: Python 3.11's wait_for can swallow a cancel that lands
        # as its inner call finishes (gh-86296), and a satellite link then called its
        # peer again for ever while the stop waited on it.
        while pending := [task for task in self._tasks if not task.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in self._servers:
            await server.stop()
        # together: a room may be inside a Whisper pass, and systemd gives a stop 90 s
        await asyncio.gather(*(asyncio.to_thread(room.close) for room in self.rooms.values()))
        if all(room.pipeline is not self._home for room in self.rooms.values()):
            await asyncio.to_thread(self._home.player.close)  # the default room is a satellite's


def _file_name(room: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in room)
