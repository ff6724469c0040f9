"""A recording stand-in for the Spotify Web API and accounts service on 127.0.0.1.

It answers like Spotify for the player endpoints, issues tokens, records every
request, and can be told to answer the next requests with an error status.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.local_http import LocalHTTPServer

DEVICES = [
    {
        "id": "dev-phone",
        "is_active": False,
        "name": "Phone",
        "type": "Smartphone",
        "volume_percent": 40,
        "is_private_session": False,
        "is_restricted": False,
        "supports_volume": True,
    },
    {
        "id": "dev-kitchen",
        "is_active": True,
        "name": "Kitchen Pi",
        "type": "Speaker",
        "volume_percent": 50,
        "is_private_session": False,
        "is_restricted": False,
        "supports_volume": True,
    },
]
_REASONS = {403: "PREMIUM_REQUIRED", 404: "NO_ACTIVE_DEVICE"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str

    @property
    def call(self) -> str:
        """ "PUT /me/player/play" style, for comparing call sequences."""
        return f"{self.method} {self.path}"


@dataclass
class Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    path: str = ""
    """Only requests to this path (any when empty)."""


class SpotifyStub:
    """Serves /v1/... (Web API) and /api/token (accounts) on one port."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.failures: list[Failure] = []
        self.devices = [dict(d) for d in DEVICES]
        self.access_token = "access-0"
        self.issued = 0
        self.delay_seconds = 0.0
        self.current_uri = ""
        """What GET /me/player/currently-playing reports ("" = nothing, 204)."""
        self.song_ms: int | None = None
        """Its length (`play_song`): its progress then runs, and it ends."""
        self._song_started = 0.0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                stub._handle(self)

            do_GET = do_PUT = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = LocalHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.api_base = self.base + "/v1/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, status: int, times: int = 1, path: str = "", **headers: str) -> None:
        for _ in range(times):
            self.failures.append(
                Failure(status, {k.replace("_", "-"): v for k, v in headers.items()}, path)
            )

    def play_song(self, uri: str, length_ms: int) -> None:
        """The device plays `uri` from its start, for `length_ms`, then nothing."""
        self.current_uri, self.song_ms, self._song_started = uri, length_ms, time.monotonic()

    def calls(self, api_only: bool = True) -> list[str]:
        with self._lock:
            return [r.call for r in self.requests if not api_only or r.path != "/api/token"]

    def token(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "user-read-playback-state user-modify-playback-state",
            "refresh_token": "refresh-0",
        }

    def _respond(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        h.send_response(status)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        if data:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if h.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            body: Any = dict(parse_qsl(raw.decode()))
        else:
            body = json.loads(raw) if raw else None
        path = url.path.removeprefix("/v1")
        req = Request(
            h.command, path, dict(parse_qsl(url.query)), body, h.headers.get("Authorization", "")
        )
        with self._lock:
            self.requests.append(req)
            failure = next((f for f in self.failures if not f.path or f.path == path), None)
            if failure is not None and path != "/api/token":
                self.failures.remove(failure)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if path == "/api/token":
            self._token(h, body)
            return
        if failure is not None:
            error = {"status": failure.status, "message": f"stub error {failure.status}"}
            if failure.status in _REASONS:
                error["reason"] = _REASONS[failure.status]
            self._respond(h, failure.status, {"error": error}, failure.headers)
            return
        if req.authorization != f"Bearer {self.access_token}":
            self._respond(h, 401, {"error": {"status": 401, "message": "The access token expired"}})
            return
        if req.call == "GET /me/player/devices":
            self._respond(h, 200, {"devices": self.devices})
        elif req.call == "GET /me/player/currently-playing":
            progress = 1000
            item: dict[str, Any] = {"uri": self.current_uri, "type": "track"}
            if self.song_ms is not None:
                progress = round(1000 * (time.monotonic() - self._song_started))
                item["duration_ms"] = self.song_ms
            if self.current_uri and (self.song_ms is None or progress < self.song_ms):
                self._respond(h, 200, {"is_playing": True, "progress_ms": progress, "item": item})
            else:
                self._respond(h, 204)
        elif req.call in (
            "PUT /me/player/play",
            "PUT /me/player/pause",
            "PUT /me/player/volume",
            "PUT /me/player/seek",
            "PUT /me/player/repeat",
            "POST /me/player/next",
            "POST /me/player/previous",
            "POST /me/player/queue",
        ):
            self._respond(h, 204)
        else:
            self._respond(h, 404, {"error": {"status": 404, "message": "Service not found"}})

    def _token(self, h: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        grant = form.get("grant_type")
        ok = (grant == "authorization_code" and form.get("code") and form.get("code_verifier")) or (
            grant == "refresh_token" and form.get("refresh_token") == "refresh-0"
        )
        if not ok:
            self._respond(h, 400, {"error": "invalid_grant", "error_description": "bad grant"})
            return
        self.issued += 1
        self.access_token = f"access-{self.issued}"
        self._respond(h, 200, self.token())
