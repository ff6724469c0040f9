"""`heymusic doctor`: one line per part (models, audio, catalog, Spotify) and what to do about it.

Checks are cheap and independent: one broken part never hides the others.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from heymusic.config import Settings
from heymusic.errors import UserError

Check = Callable[[Settings], str]


class Advice(Exception):
    """A part that works but will not do what a person expects (a `warn` line; the exit
    status stays 0): say what to do."""


def check_wake(settings: Settings) -> str:
    from heymusic.wake.detector import WakeDetector

    detector = WakeDetector(settings)
    enrolled = detector.enrolled
    personal = (
        f"; personal verifier for {', '.join(enrolled)} (`heymusic enroll --remove` forgets it)"
        if enrolled
        else "; nobody enrolled (`heymusic enroll` cuts false wakes for your voices)"
    )
    return (
        f"wake model(s) {', '.join(detector.model_names)} load "
        f"(threshold {settings.wake.threshold}){personal}"
    )


def check_whisper(settings: Settings) -> str:
    from heymusic.speech.asr import whisper_model_dir

    path = whisper_model_dir(settings)
    return f"Whisper model at {path} (beam {settings.asr.beam_size}, {settings.asr.compute_type})"


def check_recommender_models(settings: Settings) -> str:
    from heymusic.music.encoders import query_files

    folder = settings.model_path(settings.recommender.query_encoder_dir)
    missing = [path for path in query_files(folder) if not path.is_file()]
    if missing:
        raise UserError(
            f"query encoder file {missing[0]} missing: music requests will fail; reinstall "
            "heymusic or run export_onnx.py"
        )
    return f"query encoder at {folder}"


def check_microphone(settings: Settings) -> str:
    from heymusic.audio.sources import find_input_device, open_pyaudio

    pa = open_pyaudio()
    try:
        index = find_input_device(pa, settings.audio.input_device)
        info = (
            pa.get_device_info_by_index(index)
            if index is not None
            else (pa.get_default_input_device_info())
        )
        return f"microphone: {info.get('name')} (device {info.get('index')})"
    except OSError as err:
        raise UserError(f"no default microphone ({err}); set [audio] input_device") from err
    finally:
        pa.terminate()


def check_speaker(settings: Settings) -> str:
    from heymusic.audio.sources import open_pyaudio

    pa = open_pyaudio()
    try:
        outputs = [
            str(pa.get_device_info_by_index(i).get("name"))
            for i in range(pa.get_device_count())
            if int(pa.get_device_info_by_index(i).get("maxOutputChannels", 0)) > 0
        ]
    finally:
        pa.terminate()
    if not outputs:
        raise UserError(
            "no speaker found: previews stay silent; plug one in or use the spotify player"
        )
    return f"speakers: {', '.join(outputs[:3])}"


def check_echo(settings: Settings) -> str:
    if not settings.audio.echo_cancel:
        return "echo cancellation off ([audio] echo_cancel = false): wakes over loud music suffer"
    if settings.player.kind == "log":
        return "echo cancellation not needed ([player] kind = log plays nothing)"
    from heymusic.audio.echo import EchoCanceller, PlaybackReference

    EchoCanceller(PlaybackReference()).close()
    line = "echo cancellation: libspeexdsp loads; our own playback is taken out of the mic"
    if settings.player.kind != "preview":
        line += " (previews and local files played here, not Spotify on another device)"
    return line


def check_catalog(settings: Settings) -> str:
    from heymusic.music.catalog import catalog_path, read_catalog

    catalog = read_catalog()
    source = settings.catalog.source
    source_missing = bool(source) and not Path(source).expanduser().exists()
    if catalog is None:
        if source_missing:
            raise UserError(
                f"no catalog, and [catalog] source {source} does not exist: fix the path, or "
                "run `heymusic catalog import SONGS.csv` (or a music folder)"
            )
        if source:
            return f"catalog: none yet; the first run imports {source}"
        raise UserError(
            "no catalog and [catalog] source is empty: run `heymusic catalog import SONGS.csv` "
            "or point [catalog] source at a CSV or music folder"
        )
    line = f"catalog: {len(catalog)} tracks in {catalog_path()}"
    if source_missing:
        raise Advice(
            f"{line}; but [catalog] source {source} does not exist (a re-import would fail): "
            'fix the path or set it to ""'
        )
    previews = sum(1 for t in catalog.tracks if t.preview_url)
    local = sum(1 for t in catalog.tracks if t.path)
    if _spotify_plays(settings):
        return f"{line}; Spotify plays them (previews {previews}, local files {local})"
    if not previews and not local:
        raise Advice(
            f"{line}, none playable here (no preview URLs, no local files, no Spotify): "
            "import your music with `heymusic catalog import ~/Music`, or set [spotify] "
            "client_id and run `heymusic spotify login`"
        )
    return f"{line}; playable here: {previews} previews, {local} local files"


def _spotify_plays(settings: Settings) -> bool:
    """Whether the configured player would send songs to Spotify."""
    from heymusic.players.spotify_auth import logged_in

    return (
        settings.player.kind in ("auto", "spotify")
        and bool(settings.spotify.client_id)
        and logged_in(settings)
    )


def check_music(settings: Settings) -> str:
    """Where the music that plays here comes from (the demo library, local files)."""
    from heymusic.commands.demo_library import music_source_line
    from heymusic.music.catalog import read_catalog

    catalog = read_catalog()
    if catalog is None:
        return "music: no catalog yet (`heymusic catalog demo` sets up a demo library)"
    return music_source_line(catalog)


def check_spotify(settings: Settings) -> str:
    from heymusic.players.spotify_auth import logged_in

    if settings.player.kind in ("log", "preview"):
        return f"Spotify not used ([player] kind = {settings.player.kind})"
    if not settings.spotify.client_id and settings.player.kind == "auto":
        return (
            "Spotify not set up: local files and previews only; to add it set [spotify] "
            "client_id and run `heymusic spotify login`"
        )
    if not settings.spotify.client_id:
        raise UserError(
            "Spotify: no [spotify] client_id; set it and run `heymusic spotify login` "
            "(without it only local files and previews play)"
        )
    if not logged_in(settings):
        raise UserError("Spotify: not logged in; run `heymusic spotify login`")
    return "Spotify: logged in (`heymusic spotify status` lists devices)"


CHECKS: list[tuple[str, Check]] = [
    ("wake", check_wake),
    ("asr", check_whisper),
    ("recommender", check_recommender_models),
    ("microphone", check_microphone),
    ("speaker", check_speaker),
    ("echo", check_echo),
    ("catalog", check_catalog),
    ("music", check_music),
    ("spotify", check_spotify),
]


def satellite_checks(settings: Settings) -> list[tuple[str, Check]]:
    """One check per [rooms] satellite: does it answer `describe` as a satellite?"""

    def check(uri: str) -> Check:
        def answers(settings: Settings) -> str:
            import asyncio

            from heymusic.rooms.satellite import probe

            try:
                return f"{uri} {asyncio.run(probe(uri))}"
            except (OSError, TimeoutError) as err:
                raise UserError(
                    f"{uri} does not answer ({err or type(err).__name__}): is wyoming-satellite "
                    "running there with --uri tcp://0.0.0.0:PORT?"
                ) from err

        return answers

    return [(room, check(uri)) for room, uri in settings.rooms.satellite_uris().items()]


def doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Print ok/warn/FAIL per check; exit 1 when any check failed."""
    failed = 0
    for name, check in CHECKS + satellite_checks(settings):
        try:
            line = f"ok    {name:12} {check(settings)}"
        except Advice as advice:
            line = f"warn  {name:12} {advice}"
        except UserError as err:
            failed += 1
            line = f"FAIL  {name:12} {err}"
        except Exception as err:  # a crash in one check must not hide the others
            failed += 1
            line = f"FAIL  {name:12} {type(err).__name__}: {err}"
        print(line, flush=True)
    return 1 if failed else 0
