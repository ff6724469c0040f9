"""The rooms hub run in-process on its own event loop thread, as `heymusic run` runs it,
with every event it reports kept (room, event, when) for the tests to wait on."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from heymusic.config import load_settings
from heymusic.events import Event
from heymusic.rooms.hub import Hub
from heymusic.service.assembly import build


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HubThread:
    def __init__(self, config: Path, player: str = "log") -> None:
        self.settings = load_settings(config)
        self.events: list[tuple[str, Event, float]] = []
        self._lock = threading.Lock()
        self.home = build(self.settings, player, None)
        self.hub = Hub(self.settings, self.home, self._report)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self.hub.start())

    def _report(self, room: str, event: Event) -> None:
        with self._lock:
            self.events.append((room, event, time.monotonic()))

    def call(self, coro: object, timeout: float = 60.0) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def wait_for(
        self, match: Callable[[str, Event], bool], timeout: float = 60.0, after: int = 0
    ) -> tuple[str, Event, float]:
        """The first reported (room, event, time) from index `after` that `match`es."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [e for e in self.events[after:] if match(e[0], e[1])]
            if found:
                return found[0]
            time.sleep(0.05)
        with self._lock:
            seen = [(r, e.to_dict()) for r, e, _ in self.events]
        raise AssertionError(f"no matching event in {timeout} s; saw {seen}")

    def close(self) -> None:
        self.call(self.hub.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
