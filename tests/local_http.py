"""The tests' HTTP servers on 127.0.0.1 (clips, the Spotify stand-in)."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class LocalHTTPServer(ThreadingHTTPServer):
    """A client may hang up mid-answer (the player drops a clip download it no longer needs):
    that is what players do, not a server error to print over pytest's output."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
