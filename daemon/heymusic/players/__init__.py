"""Players: what the person hears. `make_player` picks one from the settings."""

from __future__ import annotations

import logging

from heymusic.audio.echo import PlaybackReference
from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.players.base import MessageCallback, MoreLike, Player

_LOGGER = logging.getLogger(__name__)


def make_player(
    settings: Settings,
    kind: str | None = None,
    audio_out: str | None = None,
    on_message: MessageCallback | None = None,
    more_like: MoreLike | None = None,
    reference: PlaybackReference | None = None,
) -> Player:
    """Build the player named by `kind` (default `[player] kind`).

    Args:
        audio_out: the speaker when None; "null" discards; a .wav path records.
        on_message: hears one user-facing line per problem (the daemon speaks and logs it).
        more_like: recommender.more_like, for the radio when the queue runs out.
        reference: hears what the speaker plays, for the mic's echo canceller.

    Raises:
        UserError: kind "spotify" without a login, or an unusable `audio_out`.
    """
    kind = kind or settings.player.kind
    if kind == "log":
        from heymusic.players.log import LogPlayer

        return LogPlayer(settings.player.max_volume)
    from heymusic.audio.sink import make_sink
    from heymusic.players.preview import PreviewPlayer
    from heymusic.players.spotify_auth import logged_in, token_path

    sink = make_sink(
        audio_out,
        settings.audio.output_device,
        on_message,
        settings.audio.reconnect_seconds,
        reference,
    )
    speaker = PreviewPlayer(settings, sink, on_message, more_like)
    if kind == "preview":
        return speaker
    if kind == "spotify":
        if not logged_in(settings):
            speaker.close()
            raise UserError(
                f"not logged in to Spotify (no token at {token_path()}): "
                "run 'heymusic spotify login' first"
            )
        from heymusic.players.spotify import SpotifyPlayer

        return SpotifyPlayer(settings, on_message, more_like, speaker)
    if kind != "auto":
        speaker.close()
        raise UserError(f"unknown player '{kind}': use auto, preview, spotify or log")
    from heymusic.players.auto import AutoPlayer

    spotify: Player | None = None
    if logged_in(settings):
        from heymusic.players.spotify import SpotifyPlayer

        spotify = SpotifyPlayer(settings, on_message, more_like, speaker)
    else:
        _LOGGER.info("Spotify not logged in: the auto player uses local files and previews")
    return AutoPlayer(speaker, spotify, on_message)
