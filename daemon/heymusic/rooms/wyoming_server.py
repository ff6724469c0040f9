"""What every heymusic Wyoming service shares: frames read within limits, and a bad peer
dropped with one line while the server goes on."""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod

from wyoming.event import Event
from wyoming.server import AsyncEventHandler, AsyncTcpServer, HandlerFactory

from heymusic.rooms.frames import FrameError, read_frame

_LOGGER = logging.getLogger(__name__)


class LimitedHandler(AsyncEventHandler):
    """wyoming's handler, reading with heymusic.rooms.frames' limits."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame_bytes: int
    ) -> None:
        super().__init__(reader, writer)
        self._max_frame_bytes = max_frame_bytes

    @property
    def peer(self) -> str:
        host_port = self.writer.get_extra_info("peername") or ("?", 0)
        return f"{host_port[0]}:{host_port[1]}"

    async def run(self) -> None:
        try:
            while True:
                event = await read_frame(self.reader, self._max_frame_bytes)
                if event is None or not await self.handle_event(event):
                    break
        except FrameError as err:
            _LOGGER.warning("%s: dropped %s: it sent %s", self.service, self.peer, err)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the peer went away; nothing to tell
        except Exception as err:  # one peer's odd request must not reach the event loop
            _LOGGER.warning(
                "%s: dropped %s: its request failed (%s: %s)",
                self.service,
                self.peer,
                type(err).__name__,
                err,
            )
            _LOGGER.debug("request failed", exc_info=True)
        finally:
            await self.disconnect()
            self.writer.close()

    @property
    @abstractmethod
    def service(self) -> str:
        """The service's name in log lines."""


async def start_server(host: str, port: int, factory: HandlerFactory) -> AsyncTcpServer:
    """A wyoming TCP server, listening once this returns."""
    server = AsyncTcpServer(host, port)
    await server.start(factory)
    return server


async def send(handler: AsyncEventHandler, event: Event) -> None:
    """Write one event; a peer that left meanwhile is not an error."""
    try:
        await handler.write_event(event)
    except ConnectionError:
        pass
