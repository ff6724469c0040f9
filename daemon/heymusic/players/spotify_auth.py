"""Spotify login (OAuth PKCE, headless), the token cache, and `heymusic spotify ...`.

The token cache is `$XDG_STATE_HOME/heymusic/spotify_token.json` in spotipy's
cache format, written atomically with mode 0600. No client secret is needed
(PKCE), and the scopes allow reading and controlling playback and reading the saved
and top tracks (`heymusic spotify seed`); never writing to the account.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from pathlib import Path
from typing import Any

import requests
from spotipy.cache_handler import CacheHandler
from spotipy.oauth2 import SpotifyOAuth, SpotifyOauthError, SpotifyPKCE

from heymusic.atomic import write_atomic
from heymusic.config import Settings, state_dir
from heymusic.errors import UserError

_LOGGER = logging.getLogger(__name__)
SCOPES = "user-read-playback-state user-modify-playback-state user-library-read user-top-read"
"""Playback, plus reading saved and top tracks (`heymusic spotify seed`)."""
#: What a cached token must allow at least (when it says what it allows).
CONTROL_SCOPE = "user-modify-playback-state"
#: spotipy insists on a client id; without one configured, a cached token still works.
NO_CLIENT_ID = "unset"
# spotipy debug-logs request headers and token bodies: keep its loggers quiet.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)


def token_path() -> Path:
    return state_dir() / "spotify_token.json"


class TokenCache(CacheHandler):
    """spotipy's cache-file format, but written atomically and created 0600 (never readable
    by others, not even for a moment)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or token_path()

    def get_cached_token(self) -> dict[str, Any] | None:
        try:
            token = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            _LOGGER.warning(
                "Spotify token cache %s unreadable (%s); log in again",
                self.path,
                type(err).__name__,
            )
            return None
        return token if isinstance(token, dict) else None

    def save_token_to_cache(self, token_info: dict[str, Any]) -> None:
        write_atomic(self.path, json.dumps(token_info), mode=0o600)


class HeadlessPKCE(SpotifyPKCE):
    """SpotifyPKCE that never prompts: the daemon has no one at the keyboard, so a missing or
    unusable token is an error (handled as "log in again"), not an `input()` call."""

    def get_authorization_code(self, response: str | None = None) -> str:
        if response:
            return str(super().get_authorization_code(response))
        raise SpotifyOauthError("no usable token", error="not_logged_in")

    def validate_token(self, token_info: dict[str, Any] | None) -> dict[str, Any] | None:
        """Like spotipy's, but a cache written by another tool may lack `scope` or
        `expires_at`: such a token is used until Spotify answers 401 (then refreshed)."""
        if not token_info or not token_info.get("access_token"):
            return None
        if "scope" in token_info and not self._is_scope_subset(CONTROL_SCOPE, token_info["scope"]):
            return None  # a token for something else: log in again
        if self.is_token_expired(token_info):
            if not token_info.get("refresh_token"):
                return None
            return dict(self.refresh_access_token(token_info["refresh_token"]))
        return token_info

    @staticmethod
    def is_token_expired(token_info: dict[str, Any]) -> bool:
        return "expires_at" in token_info and bool(SpotifyPKCE.is_token_expired(token_info))


def require_client_id(settings: Settings) -> None:
    """Logging in needs the client id of the user's own Spotify app: say how to get one."""
    cfg = settings.spotify
    if not cfg.client_id:
        raise UserError(
            "Spotify needs a client id first: create an app at "
            "https://developer.spotify.com/dashboard with redirect URI "
            f"{cfg.redirect_uri}, set [spotify] client_id in the config, then run "
            "`heymusic spotify login`"
        )


def make_auth(settings: Settings, for_login: bool = False) -> SpotifyPKCE:
    """The PKCE auth manager, with its OAuth URLs on `[spotify] accounts_base`.

    The client id is needed to log in and to refresh a token, not to use a cached one.
    """
    cfg = settings.spotify
    if for_login:
        require_client_id(settings)
    auth = HeadlessPKCE(
        client_id=cfg.client_id or NO_CLIENT_ID,
        redirect_uri=cfg.redirect_uri,
        scope=SCOPES,
        cache_handler=TokenCache(),
        open_browser=False,
        requests_timeout=cfg.timeout_seconds,
    )
    base = cfg.accounts_base.rstrip("/")
    auth.OAUTH_AUTHORIZE_URL = f"{base}/authorize"
    auth.OAUTH_TOKEN_URL = f"{base}/api/token"
    return auth


def logged_in(settings: Settings) -> bool:
    """A cached access token: the Spotify player can work (refreshing it needs a client id)."""
    token = TokenCache().get_cached_token()
    return bool(token and token.get("access_token"))


def login(settings: Settings, redirect_url: str | None = None) -> Path:
    """Headless PKCE: print the authorize URL, read the redirect URL the browser ended on.

    Raises:
        UserError: no client id, a refused or mismatched authorization, accounts host down.
    """
    auth = make_auth(settings, for_login=True)
    state = secrets.token_urlsafe(16)
    print(
        "1. Open this URL in a browser on any device and allow access:\n\n"
        f"   {auth.get_authorize_url(state=state)}\n\n"
        f"2. The browser then goes to {settings.spotify.redirect_uri}?code=... (the page "
        "will not load: that is fine).\n   Copy that whole address and paste it here.",
        file=sys.stderr,
    )
    if redirect_url is None:
        try:
            redirect_url = input("redirect URL: ").strip()
        except EOFError:
            raise UserError(
                "no redirect URL was pasted; run 'heymusic spotify login' in a "
                "terminal and paste the address when asked"
            ) from None
    try:
        got_state, code = SpotifyOAuth.parse_auth_response_url(redirect_url)
    except SpotifyOauthError as err:
        raise UserError(
            f"Spotify refused the login ({err.error}); run the login again and press Agree"
        ) from err
    if not code:
        raise UserError(
            "that address holds no ?code=...; paste the full address the "
            "browser went to after you agreed"
        )
    if got_state != state:
        raise UserError(
            "that address is from another login attempt; run the login again "
            "and paste the address from this one"
        )
    try:
        auth.get_access_token(code, check_cache=False)
    except SpotifyOauthError as err:
        raise UserError(
            f"Spotify did not accept the code ({err.error}); codes work once and "
            "expire quickly: run the login again"
        ) from err
    except requests.RequestException as err:
        raise UserError(
            f"cannot reach {settings.spotify.accounts_base} "
            f"({type(err).__name__}); check the network and try again"
        ) from err
    return token_path()
