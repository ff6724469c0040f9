"""Home Assistant's conversation agent: a Wyoming handle service.

Home Assistant's Wyoming integration asks `describe`, reads an `info` with a handle
program, and makes it a conversation agent; each request is then one connection sending a
`transcript` and waiting for `handled` or `not-handled` with the reply text. The request
is carried out like a spoken command, in the room the context names, else the default room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from wyoming.asr import Transcript
from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import Attribution, Describe, HandleModel, HandleProgram, Info

from heymusic import __version__
from heymusic.rooms.replies import reply
from heymusic.rooms.room import Room
from heymusic.rooms.wyoming_server import LimitedHandler, send
from heymusic.text import MAX_REQUEST_CHARS

_LOGGER = logging.getLogger(__name__)

ATTRIBUTION = Attribution(name="heymusic", url="https://github.com/heymusic/heymusic")
LANGUAGES = ["en"]


def conversation_info() -> Info:
    model = HandleModel(
        name="heymusic",
        attribution=ATTRIBUTION,
        installed=True,
        description="music requests: play, skip, pause, volume, what's playing",
        version=__version__,
        languages=LANGUAGES,
    )
    program = HandleProgram(
        name="heymusic",
        attribution=ATTRIBUTION,
        installed=True,
        description="heymusic: offline music by voice",
        version=__version__,
        models=[model],
    )
    return Info(handle=[program])


class ConversationHandler(LimitedHandler):
    """One Home Assistant connection: describe and transcripts."""

    service = "conversation service"

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        room_for: Callable[[dict[str, Any]], Room],
        max_frame_bytes: int,
    ) -> None:
        super().__init__(reader, writer, max_frame_bytes)
        self._room_for = room_for

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await send(self, conversation_info().event())
        elif Transcript.is_type(event.type):
            await send(self, await self._answer(event.data.get("text"), event.data.get("context")))
        return True

    async def _answer(self, text: Any, context: Any) -> Event:
        """The reply to one request; `text` and `context` as the peer sent them."""
        context = context if isinstance(context, dict) else {}
        if not isinstance(text, str) or not text.strip():
            return NotHandled("I heard no request.", context).event()
        if len(text) > MAX_REQUEST_CHARS:  # the same bound as every request (heymusic.text)
            _LOGGER.warning(
                "conversation service: refused a request of %d characters from %s (at most %d)",
                len(text),
                self.peer,
                MAX_REQUEST_CHARS,
            )
            line = f"That request is too long: say it in at most {MAX_REQUEST_CHARS} characters."
            return NotHandled(line, context).event()
        room = self._room_for(context)
        try:
            events = await asyncio.wrap_future(room.text(text))
        except RuntimeError as err:
            return NotHandled(f"Sorry, {err}.", context).event()
        handled, line = reply(events)
        context = {**context, "room": room.name}
        return (Handled if handled else NotHandled)(line, context).event()
