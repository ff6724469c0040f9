"""Spoken commands understood end to end, across many voices, JSON on stdout.

Each command is "hey music, ..." said by a synthetic speaker drawn at random (espeak-ng
English and accented voices with all their variants, piper; half of them the voices the
wake word never trained on), at a random speed and level, half over music at 10 dB. It is
transcribed as the daemon does, parsed into an intent and, for requests, answered by the
recommender. Three kinds, drawn at random:
- control: a phrase of the intent table (`data/intents.toml`), right if the intent is;
- mood/genre/era: a request from the recommender's own templates filled from a random
  song ("play something chill from the nineties"), right if at least 2 of the top 5
  songs have what it asked for (the same text typed in is the ceiling, also reported);
- title: "play <title> by <artist>" of a random catalog song, right if it comes first (in
  any version: "Iron Man - 2014 Remaster" for "Iron Man").
Every command is wrong (another action, a song nobody asked for) or no action (cancel,
unknown: the "sorry" earcon; a spoken request no song matches: "I found nothing for that").
Scored in the same run: the text typed in (the ceiling), Whisper's prompt-only transcript
(one decode, as before the prompt-echo check), the transcript answered from its text alone
(`text_only`, before weak titles were settled by the audio) and as the daemon answers it now
(`now`: weak titles and unsure controls settled by the audio; a transcript Whisper was
unsure of, under `[asr] min_clarity`, or that loops (`looped`: a run of words over and over,
with the prompt and without), acted on only when it names a song or its audio a control,
listed in `unclear` with what acting on it as written would have done). Also reported: how
often a title request would get another song named like it were the catalog to lack the one
asked for (`missing_song_replaced`), each control check with its scores (`control_checks`)
and every miss. `--held-out` says the phrasings of
bench/held_out_intents.toml instead (controls, chatter, requests: a non-control is right
when it does not become a control). Each command draws from generators of its own (seed
and index: the draw since 2026-12-07, eleventh session; before, one stream ran through all,
so a phrase added to the intent table re-drew every later command). `--part i/k` answers
every k-th command of the same draw, for k runs side by side. Whisper hears each command
behind the configured front end's asr path (`[front_end]`, $HEYMUSIC_CONFIG), as the daemon
does. ~6 min for 120 here on an idle machine.

    .venv/bin/python bench/commands.py [--n 120] [--seed 0] [--held-out] [--part 0/1]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import random
import re
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from heymusic.audio.front_end import FrontEnd, path_settings
from heymusic.config import FrontEndSettings, data_dir, load_settings
from heymusic.music.matcher import plain_title
from heymusic.music.recommender import Recommender, load_recommender
from heymusic.service.actions import unclear, verbless_song
from heymusic.speech.asr import Transcriber, prompt_echo
from heymusic.speech.control_listen import ControlListen
from heymusic.speech.intents import Intent, IntentParser
from heymusic.speech.second_listen import Heard, RequestScorer, once_each
from heymusic.track import Track
from heymusic.training.retrieval.requests import TEMPLATES, make_request, satisfies
from heymusic.training.wake import data as wake_data
from heymusic.training.wake import rooms

SR = 16000
MUSIC_SNR_DB = 10.0
_TITLE = re.compile(r"^[A-Za-z][A-Za-z' ]{2,30}$")
"""Titles and artists espeak says as words (no digits, symbols or brackets)."""


def control_phrases() -> list[tuple[str, str]]:
    """(phrase, intent name) of every control phrase in the intent table."""
    table = tomllib.loads((data_dir() / "intents.toml").read_text(encoding="utf-8"))
    return [
        (phrase, spec.get("name", key))
        for key, spec in table["intents"].items()
        if spec.get("name", key) not in ("play", "volume")  # volume: a number is parsed apart
        for phrase in spec.get("phrases", [])
    ]


def draw(rec: Recommender, controls: list[tuple[str, str]], rng: random.Random) -> dict[str, Any]:
    """One command: its text, kind and what a right answer is."""
    tracks = rec.catalog.tracks
    r = rng.random()
    if r < 0.3:
        phrase, name = rng.choice(controls)
        return {"kind": "control", "text": phrase, "intent": name}
    if r < 0.7:
        while True:
            request = make_request(rng.choice(tracks), rng.randrange(len(TEMPLATES)), rng)
            if request is not None and "artist" not in request.wants:
                text = request.text
                if not text.startswith(("play", "put on")):
                    text = "play " + text
                return {"kind": "mood", "text": text, "wants": request.wants}
    while True:
        track = rng.choice(tracks)
        if _TITLE.match(track.name) and _TITLE.match(track.artist):
            return {
                "kind": "title",
                "text": f"play {track.name} by {track.artist}",
                "track": track,
            }


def same_song(a: Track, b: Track) -> bool:
    """The same song in any version: "Iron Man" is right for "Iron Man - 2014 Remaster"."""
    return (plain_title(a.name).lower(), a.artist) == (plain_title(b.name).lower(), b.artist)


def spoken(
    text: str,
    rng: np.random.Generator,
    room_rng: np.random.Generator | None = None,
    tts: Any = None,
) -> tuple[np.ndarray, wake_data.Speaker, bool]:
    """("hey music, " + text) by a random speaker, 0.5 s of quiet either side, int16.

    `room_rng`: said across a held-out simulated room instead (--room); its own generator,
    so the draw (speakers, commands, music) is the near-field one. `tts`: a held-out Kokoro
    voice says it (--voices kokoro: the unseen table or a new mixture of the seen ones)."""
    if tts is None:  # the default draw, unchanged
        spk = wake_data.speakers("eval" if rng.random() < 0.5 else "train", rng, piper=0.1)
        speech = wake_data.say(f"hey music, {text}", spk, rng)
    else:
        from heymusic.training.wake import kokoro

        held, voice = kokoro.draw_heldout_voice(rng)
        spk = wake_data.Speaker("kokoro", voice.name, held)
        speech = tts.say(f"hey music, {text}", voice)
    speech = wake_data.at_dbfs(speech, rng.uniform(-30, -15))
    voice_rms = wake_data.rms(speech)
    if room_rng is not None:
        speech = rooms.reverberate(speech, rooms.draw_room("eval", room_rng))
    over_music = bool(rng.random() < 0.5)
    if over_music:
        music = wake_data.music_clip("eval", len(speech), rng)
        speech = speech + voice_rms / 10 ** (MUSIC_SNR_DB / 20) * music
    pad = np.zeros(SR // 2, np.float32)
    audio = np.concatenate([pad, speech, pad])
    if room_rng is not None:
        audio = audio + rooms.room_tone(len(audio), voice_rms, room_rng)
    return wake_data.to_int16(audio), spk, over_music


def as_asr_hears(audio: np.ndarray, settings: FrontEndSettings) -> np.ndarray:
    """The command as Whisper hears it behind `[front_end]`'s asr path (unchanged when that
    is off). The processor first hears the clip's leading quiet four times over: in the
    daemon it has adapted to the room before anyone speaks."""
    if not path_settings(settings, "asr").processed:
        return audio
    lead = np.tile(audio[: SR // 2], 4)
    return FrontEnd(settings).process_all(np.concatenate([lead, audio]), "asr")[len(lead) :]


def group(spk: wake_data.Speaker, over_music: bool) -> str:
    """English espeak voices, espeak voices of other languages reading English, or piper;
    over music or not."""
    if spk.engine in ("piper", "kokoro"):
        voice = spk.engine
    else:
        voice = "english" if spk.voice in wake_data.ENGLISH_VOICES else "accented"
    return f"{voice}_{'music' if over_music else 'clean'}"


CONTROLS = (
    "skip",
    "previous",
    "stop",
    "pause",
    "resume",
    "volume",
    "more_like_this",
    "now_playing",
)


def held_out_draw(table: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One held-out phrasing (bench/held_out_intents.toml): half controls, half things
    that are not (chatter after a false wake, music requests)."""
    if rng.random() < 0.5:
        spec = rng.choice([s for s in table.values() if "intent" in s])
        phrase = rng.choice(spec["phrases"])
        text, value = phrase if isinstance(phrase, list) else (phrase, spec.get("value"))
        value = value.replace("step", "10") if isinstance(value, str) else value
        return {"kind": "control", "text": text, "intent": spec["intent"], "value": value}
    kind = rng.choice(sorted(table["not_commands"]))
    return {"kind": kind, "text": rng.choice(table["not_commands"][kind])}


def outcome(
    rec: Recommender,
    parser: IntentParser,
    want: dict[str, Any],
    text: str,
    heard: Heard | None = None,
    settle: Callable[[Intent], Intent] | None = None,
    clear: bool = True,
) -> str:
    """right, wrong or none (no action) for a transcript of the command `want`; `heard`
    settles weak title matches by the audio and `settle` unsure controls, as the daemon
    does; not `clear`: Whisper was unsure of it, so it is not taken as written. Held-out
    chatter and requests are right when they do not become a control."""
    intent = parser.parse(text)
    if not clear:
        intent = unclear(intent, rec, heard)
    if settle is not None:
        intent = settle(intent)
    intent = verbless_song(intent, text, parser.split_wake(text)[1], rec)
    if want["kind"] == "control":
        if intent.name == want["intent"] and want.get("value") in (None, intent.value):
            return "right"
    elif want["kind"] in ("chatter", "requests"):
        return "wrong" if intent.name in CONTROLS else "right"
    elif intent.name == "play" and intent.query:
        rec.served.clear()  # each command is answered as if it were the first
        top = [t for t, _ in rec.recommend(intent.query, k=5, heard=heard)]
        if not top:
            return "none"  # "I found nothing for that"
        if want["kind"] == "mood" and sum(satisfies(t, want["wants"]) for t in top) >= 2:
            return "right"
        if want["kind"] == "title" and same_song(top[0], want["track"]):
            return "right"
    return "none" if intent.name in ("unknown", "cancel") else "wrong"


def replaced(
    rec: Recommender, parser: IntentParser, want: dict[str, Any], text: str, heard: Heard | None
) -> bool:
    """Whether a title request, were the catalog to lack the song (in all its versions),
    would be answered by another song named like it rather than by meaning."""
    intent = parser.parse(text)
    if want["kind"] != "title" or intent.name != "play" or not intent.query:
        return False
    versions = [t.track_id for t in rec.catalog.tracks if same_song(t, want["track"])]
    named = rec.named(intent.query, heard, versions)
    return named is not None and named[0].kind == "title"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=120, help="commands")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--part",
        default="0/1",
        help="i/k: answer only commands i, i+k, ... of the same draw (k runs side by side)",
    )
    ap.add_argument(
        "--held-out",
        action="store_true",
        help="say bench/held_out_intents.toml's phrasings instead (controls, chatter, requests)",
    )
    ap.add_argument(
        "--room",
        action="store_true",
        help="say every command across a held-out simulated room (the same draw as without)",
    )
    ap.add_argument(
        "--voices",
        choices=("default", "kokoro"),
        default="default",
        help="kokoro: held-out neural voices instead of espeak-ng and piper (~3 s CPU each)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tts = None
    if args.voices == "kokoro":
        from heymusic.training.wake import kokoro

        tts = kokoro.Kokoro()
    settings = load_settings(None)
    rec = load_recommender(settings)
    transcriber = Transcriber(settings)
    parser = IntentParser(["hey music"], describes=rec.describes, title_score=rec.title_score)
    controls = control_phrases()
    scorer = RequestScorer(transcriber.model, parser.play_verbs)
    control_listen = ControlListen(parser, scorer)
    held_out = tomllib.loads((Path(__file__).parent / "held_out_intents.toml").read_text("utf-8"))
    missing: Counter[str] = Counter()
    """Title requests answered by another song named like it, were the catalog to lack it."""
    checks: list[dict[str, Any]] = []
    """Each control check: what was said, heard, and the likeliest controls' losses."""
    systems = ("typed", "prompted", "text_only", "now")
    counts: dict[str, Counter[str]] = {s: Counter() for s in systems}
    by: dict[str, Counter[str]] = {}
    """Outcomes per kind of command and per group of voices."""
    unsure: list[dict[str, Any]] = []
    """Commands Whisper was unsure of ([asr] min_clarity): what acting on them would have
    done, and what was done."""
    echoes, redecoded_ms = 0, 0.0
    examples = []
    misses: list[dict[str, Any]] = []
    answer_ms: list[float] = []
    """Intent and recommender time per command, the second listen included."""
    part, parts = (int(x) for x in args.part.split("/"))
    for i in tqdm(range(part, args.n, parts), desc="commands", unit="command"):
        # each command its own generators: a phrase added to the table changes the control
        # commands' phrases, not the rest of the draw
        rng, np_rng = random.Random(f"{args.seed}/{i}"), np.random.default_rng([args.seed, i])
        room_rng = np.random.default_rng([10_000 + args.seed, i]) if args.room else None
        want = held_out_draw(held_out, rng) if args.held_out else draw(rec, controls, rng)
        audio, speaker, over_music = spoken(want["text"], np_rng, room_rng, tts)
        audio = as_asr_hears(audio, settings.front_end)
        where = group(speaker, over_music)
        start = time.perf_counter()
        prompted = transcriber.decode(audio, transcriber.prompt)
        once = time.perf_counter()
        hearing = transcriber.hear(audio)
        now = hearing.text
        if prompt_echo(prompted, ("hey", "music")) is not None:
            echoes += 1  # transcribe decoded twice: its time beyond the one decode
            redecoded_ms += 1000 * ((time.perf_counter() - once) - (once - start))
        heard = once_each(functools.partial(scorer.losses, audio, now))
        settle = functools.partial(control_listen.settle, audio, now)
        results = {
            "typed": outcome(rec, parser, want, "hey music, " + want["text"]),
            "prompted": outcome(rec, parser, want, prompted),
            "text_only": outcome(rec, parser, want, now),
        }
        start = time.perf_counter()
        clear = hearing.clear(settings.asr.min_clarity)
        results["now"] = outcome(rec, parser, want, now, heard, settle, clear)
        answer_ms.append(1000 * (time.perf_counter() - start))
        if not clear:
            unsure.append(
                {
                    "said": want["text"],
                    "kind": want["kind"],
                    "heard": now,
                    "clarity": round(hearing.clarity, 3),
                    "looped": hearing.looped,
                    "acted_on": outcome(rec, parser, want, now, heard, settle),
                    "now": results["now"],
                }
            )
        if want["kind"] == "title":
            missing["title_requests"] += 1
            missing["text_only"] += replaced(rec, parser, want, now, None)
            missing["now"] += replaced(rec, parser, want, now, heard)
        if ControlListen.wanted(parser.parse(now)):
            weighed = control_listen.weigh(audio, now)
            checks.append(
                {
                    "said": want["text"],
                    "kind": want["kind"],
                    "heard": now,
                    "best": [(w.phrase, w.meaning.name, round(w.loss, 2)) for w in weighed[:3]],
                    "right": results["now"] == "right",
                }
            )
        for system, result in results.items():
            counts[system][result] += 1
        for key in (want["kind"], where):
            tally = by.setdefault(key, Counter())
            tally[f"prompted_{results['prompted']}"] += 1
            tally[f"text_only_{results['text_only']}"] += 1
            tally[f"now_{results['now']}"] += 1
        if results["now"] != "right":
            misses.append(
                {
                    "said": want["text"],
                    "kind": want["kind"],
                    "heard": now,
                    "clarity": round(hearing.clarity, 3),
                    "intent": parser.parse(now).name,
                    "outcome": results["now"],
                }
            )
        if prompted != now or results["text_only"] != results["now"]:
            examples.append(
                {
                    "said": want["text"],
                    "by": speaker.name,
                    "over_music": over_music,
                    "prompted_text": prompted,
                    "now_text": now,
                    "outcomes": results,
                }
            )
    print(
        json.dumps(
            {
                "commands": args.n,
                "seed": args.seed,
                "asr_front_end": vars(path_settings(settings.front_end, "asr")),
                "outcomes": {k: dict(v) for k, v in counts.items()},
                "by": {k: dict(sorted(v.items())) for k, v in sorted(by.items())},
                "min_clarity": settings.asr.min_clarity,
                "unclear": {
                    "acted_on": dict(Counter(u["acted_on"] for u in unsure)),
                    "now": dict(Counter(u["now"] for u in unsure)),
                    "commands": unsure,
                },
                "prompt_echoes": echoes,
                "redecode_ms_mean": round(redecoded_ms / echoes, 1) if echoes else None,
                "answer_ms_p50_p95": [round(float(np.percentile(answer_ms, q))) for q in (50, 95)],
                "missing_song_replaced": dict(missing),
                "control_checks": checks,
                "changed": examples,
                "misses": misses,
            },
            indent=1,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
