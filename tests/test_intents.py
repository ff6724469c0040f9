"""Intent parsing: the phrase table itself, wake-phrase stripping, filler, play queries, volume."""

from __future__ import annotations

import csv
import random
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from heymusic.config import data_dir
from heymusic.music.catalog import read_source
from heymusic.music.matcher import TitleMatcher
from heymusic.music.song_features import ENERGIES, ERA_WORDS, GENRE_WORDS, MOODS, describes_music
from heymusic.speech.intents import INTENT_NAMES, SURE_SCORE, Intent, IntentParser
from heymusic.text import wake_phrases_from_models
from heymusic.training.wake.data import WORDS_FILE
from tests.conftest import PROJECT_DIR, TEST_SEED

TABLE = tomllib.loads((data_dir() / "intents.toml").read_text(encoding="utf-8"))
PARSER = IntentParser(["hey jarvis"], volume_step=10, describes=describes_music)
WAKES = ["Hey music,", "Hey, Musik.", "Hamusic,", "hey music", "Hey Jarvis,", "Okay, hey music,"]
RNG = random.Random(TEST_SEED)


def _table_cases() -> list[tuple[str, str, object]]:
    cases = []
    for key, spec in TABLE["intents"].items():
        name = spec.get("name", key)
        value = spec.get("value")
        value = value.replace("step", "10") if isinstance(value, str) else value
        cases.extend((phrase, name, value) for phrase in spec["phrases"])
    return cases


@pytest.mark.parametrize(("phrase", "name", "value"), _table_cases())
def test_every_table_phrase_after_any_wake_phrase(phrase: str, name: str, value: object) -> None:
    wake = RNG.choice(WAKES)
    intent = PARSER.parse(f"{wake} {phrase.capitalize()}.")
    assert (intent.name, intent.value) == (name, value), f"{wake} {phrase}"


@pytest.mark.parametrize(("phrase", "name", "value"), _table_cases())
def test_every_table_phrase_typed_without_a_wake_phrase(
    phrase: str, name: str, value: object
) -> None:
    """Home Assistant and `ask` send the command alone: "stop the music" is a stop, not a
    wake phrase ending in "music" with nothing after it."""
    intent = PARSER.parse(f"{phrase.capitalize()}.")
    assert (intent.name, intent.value) == (name, value), phrase


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hey music, uh, skip this one please.", "skip"),
        ("Hey music, could you stop the music?", "stop"),
        ("Hey music, next song.", "skip"),
        ("Hey music, um, can you pause it for me", "pause"),
        ("Hey, music. Could you please turn it up?", "volume"),
        ("Hey music, play.", "resume"),
        ("Hey music, play the next song", "skip"),
        ("Hey music, never mind.", "cancel"),
        ("Hey music.", "cancel"),
        ("Hey music, what's the weather tomorrow in Paris?", "unknown"),
        ("Hey music, skip this sog", "skip"),
        ("Hey, Musik. Music on.", "resume"),
        ("Hey new sick, play some jazz", "play"),
    ],
)
def test_filler_misspellings_and_edge_cases(text: str, name: str) -> None:
    assert PARSER.parse(text).name == name


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Hey music, set the volume to 30%.", 30),
        ("Hey music, volume fifty.", 50),
        ("Hey music, volume to twenty five percent", 25),
        ("Hey music, set volume to 250", 100),
        ("Hey music, quieter please", "-10"),
    ],
)
def test_volume_absolute_and_steps(text: str, value: object) -> None:
    intent = PARSER.parse(text)
    assert (intent.name, intent.value) == ("volume", value)


def _speakable_songs(csv_path: Path, n: int) -> list[tuple[str, str]]:
    with csv_path.open(encoding="utf-8") as fh:
        rows = [
            (r["track_name"], r["track_artist"])
            for r in csv.DictReader(fh)
            if r["track_name"] and r["track_artist"]
        ]
    return RNG.sample(rows, n)


def test_play_keeps_the_request_as_heard(
    shared_csv: Path, catalog_parser: tuple[IntentParser, TitleMatcher]
) -> None:
    templates = [
        "{wake} play {title} by {artist}.",
        "{wake} uh, play {title} by {artist} please",
        "{wake} could you play {title}?",
        "{wake} put on {title} by {artist}",
    ]
    for title, artist in _speakable_songs(shared_csv, 25):
        template = RNG.choice(templates)
        text = template.format(wake=RNG.choice(WAKES), title=title, artist=artist)
        intent = catalog_parser[0].parse(text)
        assert intent.name == "play", text
        last_word = re.findall(r"[^\W_]+", title)[-1]
        assert intent.query is not None and last_word in intent.query, text


@pytest.fixture(scope="module")
def catalog_parser(shared_csv: Path) -> tuple[IntentParser, TitleMatcher]:
    """The parser as the daemon builds it, with the catalog's titles to go by."""
    matcher = TitleMatcher(read_source(shared_csv).tracks)
    parser = IntentParser(
        ["hey jarvis"],
        describes=describes_music,
        title_score=lambda text: m.score if (m := matcher.best_title(text)) else 0.0,
    )
    return parser, matcher


def test_a_title_that_ends_like_politeness_keeps_its_end(
    catalog_parser: tuple[IntentParser, TitleMatcher],
) -> None:
    """Catalog titles whose last words are a polite phrase ("Don't Start Now", "Thank You"),
    asked for bare or with politeness after them: the title is the query, whole. Without the
    catalog's titles to go by, "play jazz please" and "play Don't Start Now" look alike."""
    rng = random.Random(TEST_SEED)
    parser, matcher = catalog_parser
    polite = [" ".join(p) for p in parser._polite]

    def testable(title: str) -> bool:
        """Not a control too ("play Move on Now" skips), no hesitation ("Ah Yeah": dropped
        anywhere), no start that is a title too ("I'm Gonna Be (500 Miles)")."""
        words = title.split()
        shorter = (matcher.best_title(" ".join(words[:k])) for k in range(1, len(words)))
        return (
            parser.parse(f"play {title}").name == "play"
            and not parser._filler & {w.lower() for w in words}
            and not any(m is not None and m.score >= 100 for m in shorter)
        )

    titles = sorted(
        {
            t.name
            for t in matcher.tracks
            if re.fullmatch(r"[A-Za-z' ]+", t.name)
            and any(f" {t.name.lower()}".endswith(f" {p}") for p in polite)
        }
    )
    titles = [t for t in titles if testable(t)]
    assert len(titles) >= 20
    for title in rng.sample(titles, 20):
        text = f"{rng.choice(WAKES)} play {title} {rng.choice(['', *polite])}".strip()
        intent = parser.parse(text)
        assert intent.name == "play" and _plain(intent.query or "") == _plain(title), text
    assert parser.parse("hey jarvis play some jazz now please").query == "jazz"


def test_free_text_requests() -> None:
    intent = PARSER.parse("Hey music, I'd like to hear some mellow piano for a rainy evening.")
    assert (intent.name, intent.query) == ("play", "mellow piano for a rainy evening")
    assert PARSER.parse("Hey music, play something by Queen").query == "something by Queen"


def test_wake_phrase_names_from_models() -> None:
    assert wake_phrases_from_models(["hey_jarvis_v0.1", "hey_music"]) == ["hey jarvis", "hey music"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_known_intent(text: str) -> None:
    intent = PARSER.parse(text)
    assert intent.name in INTENT_NAMES
    assert intent.query is None or intent.name == "play"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["hey", "music", "play", "skip", "uh", "volume", "50", "by", "the"]))
)
def test_command_word_soup_never_raises(words: list[str]) -> None:
    assert PARSER.parse(" ".join(words)).name in INTENT_NAMES


def test_phrases_from_the_config_extend_the_table(tmp_path: Path, whisper_dir: Path) -> None:
    """`[intents] KEY = [...]` reaches the daemon's parser (and `ask`'s, test_config)."""
    from heymusic.config import load_settings
    from heymusic.players.log import LogPlayer
    from heymusic.service.assembly import NoRecommender, build_stages

    rng = random.Random(TEST_SEED + 3)
    words = ["amber", "lantern", "quietly", "harbour", "velvet", "orbit", "meadow", "copper"]
    key = rng.choice(sorted(TABLE["intents"]))
    name = TABLE["intents"][key].get("name", key)
    phrase = " ".join(rng.sample(words, 3))
    said = f"Hey music, {phrase.capitalize()}."
    assert PARSER.parse(said).name != name  # not understood from the shipped table alone
    assert IntentParser(["hey music"], extra={key: [phrase]}).parse(said).name == name
    config = tmp_path / "config.toml"
    config.write_text(f'[asr]\nmodel_dir = "{whisper_dir}"\n[intents]\n{key} = ["{phrase}"]\n')
    stages = build_stages(load_settings(config), LogPlayer(), NoRecommender("no catalog"))
    assert stages.intents.parse(said).name == name


HELD_OUT = tomllib.loads((PROJECT_DIR / "bench" / "held_out_intents.toml").read_text("utf-8"))
HELD_OUT_ACCURACY = 0.92
"""Typed, the held-out phrasings get this share right (0.73 with phrase matching alone, 0.95
with structure; docs/commands.md)."""


def _held_out_cases() -> list[tuple[str, str, object]]:
    cases = []
    for spec in HELD_OUT.values():
        if "intent" not in spec:
            continue
        for phrase in spec["phrases"]:
            text, value = phrase if isinstance(phrase, list) else (phrase, spec.get("value"))
            value = value.replace("step", "10") if isinstance(value, str) else value
            cases.append((text, spec["intent"], value))
    return cases


def test_held_out_phrasings_are_not_table_phrases() -> None:
    table = {" ".join(_plain(p)) for _, spec in TABLE["intents"].items() for p in spec["phrases"]}
    assert not [t for t, _, _ in _held_out_cases() if " ".join(_plain(t)) in table]


def test_held_out_phrasings_typed() -> None:
    cases = _held_out_cases()
    wrong = [
        (text, intent)
        for text, name, value in cases
        if ((intent := PARSER.parse(f"{RNG.choice(WAKES)} {text}")).name, intent.value)
        != (name, value)
    ]
    assert len(cases) > 250
    assert 1 - len(wrong) / len(cases) >= HELD_OUT_ACCURACY, wrong


def test_held_out_phrasings_typed_without_a_wake_phrase() -> None:
    """Home Assistant and `ask` send what a person wrote: no misheard wake phrase to take
    off, so "some music please" is a request for music, not "hey music" and a "please"."""
    cases = _held_out_cases()
    wrong = [
        (text, intent)
        for text, name, value in cases
        if ((intent := PARSER.parse(text, typed=True)).name, intent.value) != (name, value)
    ]
    assert 1 - len(wrong) / len(cases) >= HELD_OUT_ACCURACY, wrong
    # typed or said after the wake phrase, a phrasing means the same
    rng = random.Random(TEST_SEED)
    spoken = {text: PARSER.parse(f"{rng.choice(WAKES)} {text}") for text, _, _ in cases}
    assert [t for t, _, _ in cases if PARSER.parse(t, typed=True) != spoken[t]] == []
    said = rng.choice(cases)[0]
    assert PARSER.parse(f"Hey Jarvis, {said}", typed=True) == spoken[said]


def test_chatter_and_requests_are_not_controls() -> None:
    said = [t for kind in HELD_OUT["not_commands"].values() for t in kind]
    controls = [t for t in said if PARSER.parse(f"Hey music, {t}").name not in NOT_CONTROLS]
    assert len(controls) <= 0.02 * len(said), controls


NOT_CONTROLS = ("play", "cancel", "unknown")


def _dictionary(shortest: int, longest: int) -> list[str]:
    """Lowercase dictionary words of `shortest` to `longest` letters (wamerican)."""
    pattern = re.compile(rf"[a-z]{{{shortest},{longest}}}")
    return [w for w in WORDS_FILE.read_text().split() if pattern.fullmatch(w)]


def test_a_word_that_sounds_like_none_of_a_phrase_is_not_that_phrase_misheard() -> None:
    """Random dictionary words put in for the one word that makes a table phrase a control
    ("freeze the music" for "resume the music"): near in letters as a whole, the result is
    not that control, unless the word sounds like one of the control's own words or of the
    politeness around commands."""
    dictionary = _dictionary(3, 6)
    rng = random.Random(TEST_SEED)
    kept, said = [], 0
    for phrase, name, _ in _table_cases() * 6:
        words = _plain(phrase)
        core, _ = PARSER._core(words)
        if name in NOT_CONTROLS or len(words) < 2 or len(core.split()) != 1:
            continue
        # the control's own words, and the politeness and frame misheard words may be
        own = {w for p, n, _ in _table_cases() if n == name for w in _plain(p)}
        own |= set(PARSER._around)
        word = rng.choice(dictionary)
        while describes_music(word) or max(fuzz.ratio(word, w) for w in own) >= 55:
            word = rng.choice(dictionary)
        text = " ".join(word if w == core else w for w in words)
        said += 1
        if PARSER.parse(text, typed=True).name == name:
            kept.append(text)
    assert said > 200
    assert len(kept) <= 0.01 * said, kept


def _plain(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))


def test_a_control_word_after_a_play_verb_is_a_control() -> None:
    """Random frames around "next" / "previous": politeness, verb, determiner and noun
    never turn them into a song search."""
    polite = ["", "please ", "could you ", "can you please ", "hey ", "um, ", "okay "]
    verbs = ["play ", "put on ", "go to ", "skip to ", "jump to ", ""]
    words = {"skip": ["next"], "previous": ["previous", "last"]}
    nouns = ["song", "track", "one", "tune", ""]
    after = ["", " please", " for me", " now"]
    for _ in range(200):
        name = RNG.choice(list(words))
        text = (
            f"{RNG.choice(WAKES)} {RNG.choice(polite)}{RNG.choice(verbs)}"
            f"{RNG.choice(['the ', ''])}{RNG.choice(words[name])} {RNG.choice(nouns)}"
            f"{RNG.choice(after)}"
        )
        assert PARSER.parse(text).name == name, text


def test_start_over_whats_next_and_stop_after_this_song_by_their_shape() -> None:
    """Random frames: "start/run/take it over from the top" restarts the song, "tell me
    what plays after this one" asks (it had skipped), "stop the music when this one is
    over" stops at the song's end (it had stopped at once); a question with a word misheard
    in it is still no skip; "start", "stop" and "next" alone keep their meaning."""
    polite = ["", "please ", "could you ", "okay ", "um, ", "so "]
    shapes = {
        "restart": lambda: (
            f"{RNG.choice(['start ', 'play ', 'take ', 'begin ', 'restart ', 'run '])}"
            f"{RNG.choice(['it ', 'this ', 'this song ', 'this one ', 'the track ', 'that '])}"
            f"{RNG.choice(['over', 'from the beginning', 'from the start', 'over from the top'])}"
        ),
        "up_next": lambda: (
            f"{RNG.choice(['tell me ', ''])}"
            f"{RNG.choice(['whats', 'what is', 'which song is', 'what comes', 'what plays'])} "
            f"{RNG.choice(['next', 'up next', 'coming up next', 'after this one', 'on next'])}"
        ),
        "stop_after": lambda: (
            f"{RNG.choice(['stop', 'stop the music', 'turn it off', 'switch off', 'stop playing'])} "
            f"{RNG.choice(['after this', 'after this song', 'when this one is over', 'when this track ends', 'at the end of this one', 'once this song is done'])}"
        ),
    }
    for _ in range(300):
        name = RNG.choice(list(shapes))
        text = (
            f"{RNG.choice(WAKES)} {RNG.choice(polite)}{shapes[name]()}{RNG.choice(['', ' please'])}"
        )
        assert PARSER.parse(text).name == name, text
    heard = _dictionary(4, 7)
    for _ in range(50):  # a question with a word misheard ("who live up next") is no skip
        asked = RNG.choice(["who", "what", "whats", "which song"])
        text = f"{asked} {RNG.choice(heard)} {RNG.choice(['up next', 'next', 'after this one'])}"
        assert PARSER.parse(f"{RNG.choice(WAKES)} {text}").name == "up_next", text
    alone = {"start playing": "resume", "stop playing": "stop", "next": "skip", "stop": "stop"}
    for text, name in alone.items():
        assert PARSER.parse(f"{RNG.choice(WAKES)} {text}").name == name, text


def test_play_this_again_plays_the_song_from_its_beginning() -> None:
    """ "play this again", "let me hear this song once more": the song playing from its
    beginning (they had searched the catalog for "this again"); "play that again" is still
    the song before, "play more of this" more like it."""
    for _ in range(100):
        verb = RNG.choice(["play", "replay", "let me hear", "i want to hear", "can you play"])
        song = RNG.choice(["this", "this song", "this one", "this track"])
        text = f"{verb} {song} {RNG.choice(['again', 'once more'])}{RNG.choice(['', ' please'])}"
        assert PARSER.parse(f"{RNG.choice(WAKES)} {text}").name == "restart", text
    assert PARSER.parse("Hey music, play that again").name == "previous"
    assert PARSER.parse("Hey music, play more of this").name == "more_like_this"


def test_repeat_on_and_off_whatever_the_verb() -> None:
    """Random shapes of "put this song on loop", "keep repeating it", "turn looping off",
    "take this track off repeat": on or off as said ("don't stop repeating" is on); a
    request naming a loop is a request."""
    polite = ["", "please ", "could you ", "okay ", "um, ", "so "]
    said = ["this song", "this one", "this track", "it", "the song", "this"]
    mode = ["repeat", "loop"]
    shapes = {
        "on": [
            lambda: f"{RNG.choice(['repeat', 'loop', 'keep repeating'])} {RNG.choice(said)}",
            lambda: (
                f"{RNG.choice(['put', 'play', 'keep', 'set'])} {RNG.choice(said)} on "
                f"{RNG.choice(mode)}"
            ),
            lambda: f"turn {RNG.choice(['on repeat', 'repeat on', 'on the loop', 'looping on'])}",
            lambda: f"don't {RNG.choice(['stop repeating', 'stop looping', 'turn off repeat'])}",
        ],
        "off": [
            lambda: (
                f"{RNG.choice(['stop', 'quit', 'no more'])} "
                f"{RNG.choice(['repeating', 'looping', 'repeat'])} {RNG.choice(['', *said])}"
            ),
            lambda: (
                f"turn {RNG.choice(['off repeat', 'repeat off', 'the loop off', 'looping off'])}"
            ),
            lambda: f"take {RNG.choice(said)} off {RNG.choice(mode)}",
        ],
    }
    for _ in range(300):
        value = RNG.choice(list(shapes))
        text = f"{RNG.choice(WAKES)} {RNG.choice(polite)}{RNG.choice(shapes[value])()}"
        intent = PARSER.parse(text)
        assert (intent.name, intent.value) == ("repeat", value), text
    assert PARSER.parse("Hey music, play my loop playlist").name == "play"


def test_say_that_again_asks_for_the_last_answer_and_a_song_named_stays_a_repeat() -> None:
    """ "can you repeat that", "say it one more time", "what did you just say" ask for the
    last answer again ("repeat that" had put the song on loop, "say that again" gone back a
    song); "repeat that song" and "put that on repeat" still loop the song."""
    polite = ["", "please ", "could you ", "sorry, ", "um, ", "can you "]
    again = ["again", "one more time", "once more"]
    answers = [
        lambda: (
            f"say {RNG.choice(['that', 'it', 'what you said', 'the answer'])} {RNG.choice(again)}"
        ),
        lambda: (
            f"repeat {RNG.choice(['that', 'your answer', 'what you said', 'what you just said'])}"
        ),
        lambda: f"repeat that {RNG.choice(again[1:])}",
        lambda: f"what did you {RNG.choice(['', 'just '])}say",
    ]
    songs = [
        lambda: (
            f"repeat {RNG.choice(['this', 'that', 'the'])} {RNG.choice(['song', 'track', 'one'])}"
        ),
        lambda: f"put {RNG.choice(['that', 'this', 'it'])} on {RNG.choice(['repeat', 'loop'])}",
    ]
    for _ in range(300):
        asked = RNG.random() < 0.6
        shape = RNG.choice(answers if asked else songs)
        text = f"{RNG.choice(WAKES)} {RNG.choice(polite)}{shape()}{RNG.choice(['', ' please'])}"
        intent = PARSER.parse(text)
        assert (intent.name, intent.value) == (
            ("say_again", None) if asked else ("repeat", "on")
        ), text
    other = ["what time is it", "what's the weather like", "what day is it", "what is love"]
    for text in other:  # questions for another assistant: "what" had made them say_again
        assert PARSER.parse(f"{RNG.choice(WAKES)} {text}").name != "say_again", text


def _said_time(rng: random.Random) -> tuple[str, int]:
    """A random time as people say it, and its seconds."""
    minutes = rng.randint(1, 99)
    words = " ".join(_spoken_number(minutes))
    return rng.choice(
        [
            (f"{minutes} minutes", minutes * 60),
            (f"{words} minutes", minutes * 60),
            ("an hour", 3600),
            ("half an hour", 1800),
            ("an hour and a half", 5400),
            (f"{minutes % 9 + 2} hours", (minutes % 9 + 2) * 3600),
        ]
    )


def _spoken_number(n: int) -> list[str]:
    units = "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    units += "fourteen fifteen sixteen seventeen eighteen nineteen"
    tens = "twenty thirty forty fifty sixty seventy eighty ninety".split()
    if n < 20:
        return [units.split()[n]]
    return [tens[n // 10 - 2], *([units.split()[n % 10]] if n % 10 else [])]


def test_a_stop_said_with_a_time_is_a_sleep_timer_and_for_a_time_a_pause() -> None:
    """ "stop the music in 30 minutes", "turn it off after an hour", "set a sleep timer for
    twenty minutes": a sleep timer of that many seconds (they had been a stop at once or
    "sorry"); "stop for ten minutes" is a pause now; a kitchen timer or a request that names
    a time is neither; "cancel the sleep timer" turns it off."""
    stops = ["stop", "stop the music", "turn it off", "turn the music off", "pause", "stop playing"]
    for _ in range(300):
        said, seconds = _said_time(RNG)
        when = f"{RNG.choice(['in', 'after'])} {said}"
        text = RNG.choice(
            [
                f"{RNG.choice(stops)} {when}",
                f"{when} {RNG.choice(stops)}",
                f"{RNG.choice(['set a sleep timer for', 'sleep timer', 'start a sleep timer for'])} {said}",
            ]
        )
        intent = PARSER.parse(f"{RNG.choice(WAKES)} {RNG.choice(['', 'please ', 'um, '])}{text}")
        assert (intent.name, intent.value) == ("sleep_timer", seconds), text
        now = PARSER.parse(f"{RNG.choice(WAKES)} {RNG.choice(stops)} for {said}")
        assert now.name == "pause", said
    for text in ("set a timer for 10 minutes", "play 20 minutes of jazz", "play music for an hour"):
        assert PARSER.parse(f"{RNG.choice(WAKES)} {text}").name != "sleep_timer", text
    for text in ("cancel the sleep timer", "turn off the timer please", "no sleep timer"):
        intent = PARSER.parse(f"{RNG.choice(WAKES)} {text}")
        assert (intent.name, intent.value) == ("sleep_timer", "off"), text


def test_any_request_verb_with_only_music_asks_for_music() -> None:
    """ "I want to hear some music", "let's hear some tunes", "shuffle my songs": as "play
    music", a resume (which starts songs when nothing is paused); they had searched the
    catalog for the word "music" (or "my music"), and only the verbs that also frame
    controls ("put on", "give me") had not."""
    nouns = [
        "music",
        "songs",
        "tunes",
        "a song",
        "some tracks",
        "the music",
        "my music",
        "my songs",
    ]
    for _ in range(100):
        verb = RNG.choice(TABLE["play_prefixes"])
        text = f"{RNG.choice(WAKES)} {verb} {RNG.choice(nouns)}{RNG.choice(['', ' please'])}"
        assert PARSER.parse(text).name == "resume", text


def test_full_and_minimum_volume_and_a_lone_max_is_no_volume() -> None:
    """ "full volume", "turn it all the way up", "volume to the max" set 100 (the player caps
    it at max_volume); "minimum volume", "all the way down" set 10; they had been "sorry".
    "Max." or "Full." alone, as Whisper writes a name or a fragment, changes nothing."""
    loud = [
        lambda: f"{RNG.choice(['full', 'max', 'maximum'])} volume",
        lambda: f"turn {RNG.choice(['it', 'the volume', 'the music'])} all the way up",
        lambda: f"{RNG.choice(['volume', 'set the volume'])} to the max",
    ]
    quiet = [
        lambda: f"{RNG.choice(['minimum', 'min', 'lowest'])} volume",
        lambda: f"turn {RNG.choice(['it', 'the volume', 'the music'])} all the way down",
    ]
    for _ in range(100):
        value = RNG.choice([100, 10])
        said = RNG.choice(loud if value == 100 else quiet)()
        intent = PARSER.parse(f"{RNG.choice(WAKES)} {RNG.choice(['', 'please ', 'um '])}{said}")
        assert (intent.name, intent.value) == ("volume", value), said
    for word in ("Max.", "Full.", "Maximum.", "Minimum."):
        assert PARSER.parse(f"{RNG.choice(WAKES)} {word}").name != "volume", word


def test_every_intent_says_what_it_does() -> None:
    """`ask` and `simulate` name a command's effect in words; a new intent needs one."""
    for name in INTENT_NAMES:
        if name not in ("play", "volume"):
            assert not Intent(name).effect().startswith("plays songs for"), name


def test_music_described_with_control_words_stays_a_request() -> None:
    """After "play", only a whole control core is a control: "play something pump up" is
    music, though "pump" and "up" each belong to volume up only."""
    # "something similar" is itself a control's whole core (more like this), and "play
    # something move" a table phrase with one word misheard ("play something I love")
    signals = sorted(
        w
        for w in PARSER._signals
        if f"something {w}" not in PARSER._cores
        and max(fuzz.ratio(f"play something {w}", p) for p in PARSER._choices) < SURE_SCORE
    )
    for word in RNG.sample(signals, 12):
        text = f"Hey music, play something {word} {RNG.choice(['', 'and upbeat', 'for tonight'])}"
        assert PARSER.parse(text).name == "play", text


def test_music_described_without_a_verb_is_a_request() -> None:
    """ "hey music, something calm", "some jazz please", "the eighties": a description
    alone is a request, though "something calm" is near the table's "something else".
    Descriptions made of control words ("quiet", "pump up") or politeness ("right now") are
    left out: "hey music, quiet" is a stop."""
    phrases = [p for g in (MOODS, ENERGIES, ERA_WORDS) for ps in g.values() for p in ps]
    phrases = [
        p
        for p in [*phrases, *sorted(GENRE_WORDS)]
        if not set(_plain(p)) & set(PARSER._signals) and p not in TABLE["polite"]
    ]
    openers = ["", "something ", "some ", "anything ", "a bit of ", "um, something "]
    after = ["", " please", " music", " songs", " stuff"]
    for _ in range(200):
        described = RNG.choice(phrases)
        text = f"{RNG.choice(WAKES)} {RNG.choice(openers)}{described}{RNG.choice(after)}"
        intent = PARSER.parse(text)
        query = " ".join(_plain(intent.query or ""))
        assert intent.name == "play" and " ".join(_plain(described)) in query, (text, intent)


def test_a_command_after_a_wake_phrase_heard_as_other_words() -> None:
    """Whisper writes a wake phrase it could not make out as letters or words of its own,
    then a comma: the command after it is still understood."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    junk = ["come in", "good news", "hi new sick", "here we go", "I see"]
    wrong = []
    for _ in range(100):
        phrase, name, value = RNG.choice(_table_cases())
        spelled = "-".join(RNG.choice(letters).upper() for _ in range(RNG.randint(3, 7)))
        heard = f"{RNG.choice([spelled, RNG.choice(junk).capitalize()])}, {phrase}."
        intent = PARSER.parse(heard)
        if (intent.name, intent.value) != (name, value):
            wrong.append((heard, intent))
    assert len(wrong) <= 5, wrong


def test_a_word_of_detail_beside_a_long_phrase_keeps_it() -> None:
    """ "What have I been listening to recently": one word the table lacks, beside a phrase
    whose words are all there, is detail, not a reason to hear nothing."""
    dictionary = [w for w in _dictionary(5, 9) if not describes_music(w)]
    rng = random.Random(TEST_SEED)
    # after "play" more words are a request's ("play the next song Voile" may be a title)
    long = [
        (p, n, v)
        for p, n, v in _table_cases()
        if len(_plain(p)) >= 4 and not p.startswith(tuple(PARSER.play_verbs))
    ]
    wrong = []
    for _ in range(100):
        phrase, name, value = rng.choice(long)
        text = f"{phrase} {rng.choice(dictionary)}"
        intent = PARSER.parse(text, typed=True)
        if (intent.name, intent.value) != (name, value):
            wrong.append((text, intent.name))
    assert len(wrong) <= 5, wrong


def test_a_cancel_after_a_wake_phrase_heard_as_letters_is_a_cancel() -> None:
    """ "T-D-P, never mind." cancels quietly; it had been `unknown`, the "sorry" earcon."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    cancels = [p for p, name, _ in _table_cases() if name == "cancel"]
    for _ in range(50):
        spelled = "-".join(RNG.choice(letters).upper() for _ in range(RNG.randint(3, 7)))
        heard = f"{spelled}, {RNG.choice(cancels)}."
        assert PARSER.parse(heard).name == "cancel", heard


def test_a_negation_turns_a_phrase_around() -> None:
    """A command holding every word of a table phrase and a negation it lacks is not that
    phrase, whichever step would take it: "I don't like it" is not "I like it", "no more
    like this" is not "more like this", "don't turn it up" is no dislike ("don't" is a word
    of dislikes only), "don't play <anything>" asks for nothing."""
    controls = [(p, n, v) for p, n, v in _table_cases() if n not in NOT_CONTROLS]
    wrong = []
    for _ in range(300):
        phrase, name, value = RNG.choice(controls)
        words = _plain(phrase)
        if {"dont", "not", "never", "no"} & set(words):
            continue
        negation = RNG.choice(["dont", "do not", "never", "no more"])
        words.insert(RNG.randint(0, len(words) - 1), negation)
        text = " ".join(words)
        intent = PARSER.parse(text, typed=True)
        if (intent.name, intent.value) == (name, value):  # "don't repeat" is repeat off
            wrong.append(text)
    # what is left is "play never my favourites" and the like
    assert len(wrong) <= 0.03 * 300, wrong
    words = _dictionary(4, 9)
    for _ in range(50):
        asked = " ".join(RNG.sample(words, RNG.randint(1, 3)))
        said = f"{RNG.choice(WAKES)} {RNG.choice(['', 'please '])}don't play {asked}"
        assert PARSER.parse(said).name != "play", said


def test_music_like_the_song_playing_is_more_like_this(shared_csv: Path) -> None:
    """ "play something like this", "songs similar to this one", "more in this style": music,
    likeness and the song playing, in random frames, queue more like it; "I like this" does
    not, and "something like <a catalog song>" stays a request."""
    polite = ["", "please ", "could you ", "um, ", "okay "]
    verbs = ["play ", "put on ", "give me ", "queue ", "keep playing ", "i want ", ""]
    music = ["something", "anything", "songs", "music", "more", "tracks", "stuff"]
    likeness = ["like", "similar to", "in the style of"]
    playing = ["this", "that", "it", "this one", "this song", "this style", "that track"]
    after = ["", " please", " for me"]
    for _ in range(200):
        text = (
            f"{RNG.choice(WAKES)} {RNG.choice(polite)}{RNG.choice(verbs)}{RNG.choice(music)} "
            f"{RNG.choice(likeness)} {RNG.choice(playing)}{RNG.choice(after)}"
        )
        assert PARSER.parse(text).name == "more_like_this", text
    for _ in range(50):
        feeling = RNG.choice(["like", "love", "don't like", "hate"])
        said = f"{RNG.choice(WAKES)} I {feeling} {RNG.choice(playing)}"
        assert PARSER.parse(said).name != "more_like_this", said
    for title, artist in _speakable_songs(shared_csv, 30):
        said = f"{RNG.choice(WAKES)} play {RNG.choice(music)} like {title} by {artist}"
        assert PARSER.parse(said).name == "play", said


def test_the_particle_after_turn_says_what_is_meant() -> None:
    """ "turn it on" is not "turn it down", however near in letters, and "turn the music back
    on" is not back a song: after turn / switch, the particle decides, in random frames."""
    meant = {
        "on": ("resume", None),
        "off": ("stop", None),
        "up": ("volume", "+10"),
        "down": ("volume", "-10"),
    }
    polite = ["", "please ", "could you ", "um, ", "okay "]
    objects = ["it", "the music", "the sound", "the volume", "the song", "music"]
    after = ["", " please", " a bit", " for me", " now"]
    for _ in range(200):
        particle = RNG.choice(list(meant))
        verb = RNG.choice(["turn", "switch"])
        back = RNG.choice(["", "back "])
        text = (
            f"{RNG.choice(WAKES)} {RNG.choice(polite)}{verb} {RNG.choice(objects)} {back}"
            f"{particle}{RNG.choice(after)}"
        )
        intent = PARSER.parse(text)
        assert (intent.name, intent.value) == meant[particle], text
    assert PARSER.parse("Hey music, put the last song back on").name == "previous"


def test_one_word_left_in_a_frame_says_which_way() -> None:
    """Which way in the queue ("skip back", "play the one before this"), a lever on the
    volume ("boost the volume", "sound higher"), how it sounds now ("way too quiet", "it's
    not so loud") and a question about the song playing ("who's the singer"), in random
    frames: the one word decides, not the nearest phrase."""
    polite = ["", "please ", "could you ", "um, ", "okay "]
    after = ["", " please", " for me", " now"]
    ways = {
        "previous": ["back", "backwards", "backward"],
        "skip": ["forward", "forwards", "ahead"],
    }
    levers = {"+10": ["higher", "boost", "raise", "increase"], "-10": ["lower", "reduce", "drop"]}
    sounds = {"+10": ["quiet", "soft", "low", "faint"], "-10": ["loud", "noisy"]}
    for _ in range(300):
        shape = RNG.choice(["way", "relative", "lever", "sound", "asked"])
        if shape == "way":
            name = RNG.choice(list(ways))
            verb = RNG.choice(["skip", "go", "jump", "move"])
            one = RNG.choice(["", " one", " a song", " one track", " a bit"])
            said, meant = f"{verb} {RNG.choice(ways[name])}{one}", (name, None)
        elif shape == "relative":
            name, word = RNG.choice([("previous", "before"), ("skip", "after")])
            what = RNG.choice(["the song", "the one", "the track"])
            this = RNG.choice(["this", "this one", "that", "this song", "the current one"])
            said, meant = f"play {what} {word} {this}", (name, None)
            if RNG.random() < 0.5:  # "put on a different one", "play the following track"
                name, word = RNG.choice([("skip", "following"), ("skip", "different")])
                name, word = RNG.choice([(name, word), ("previous", "preceding")])
                verb = RNG.choice(["play", "put on", "go to"])
                said = f"{verb} {RNG.choice(['the', 'a'])} {word} {RNG.choice(['song', 'one', 'track'])}"
                meant = (name, None)
        elif shape == "lever":
            value = RNG.choice(list(levers))
            lever, noun = RNG.choice(levers[value]), RNG.choice(["the volume", "the sound"])
            said = f"{lever} {noun}" if RNG.random() < 0.5 else f"{noun} {lever}"
            said, meant = said.removeprefix("the ") + RNG.choice(["", " a bit"]), ("volume", value)
        elif shape == "asked":
            wh, be = RNG.choice([("what", "is"), ("who", "is"), ("which", "is"), ("what's", "")])
            about = RNG.choice(["artist", "band", "singer", "title"])
            said = RNG.choice(
                [f"{wh} {be} the {about}", f"{wh} {about} {be} this", f"{wh} {be} playing"]
            )
            if wh == "what's":
                said = RNG.choice([f"what's the {about}", "what's on", "what am i hearing"])
            said, meant = " ".join(said.split()), ("now_playing", None)
        else:
            value = RNG.choice(list(sounds))
            degree = RNG.choice(["too", "way too", "so", "really", "very", "not so"])
            if degree == "not so":
                value = "-10" if value == "+10" else value
                adjective = RNG.choice(sounds["-10"])
            else:
                adjective = RNG.choice(sounds[value])
            it = RNG.choice(["it's ", "it is ", "the music is ", "this is ", ""])
            it = it or ("" if degree != "so" else "it's ")  # a "so" first is a filler
            said, meant = f"{it}{degree} {adjective}", ("volume", value)
        text = f"{RNG.choice(WAKES)} {RNG.choice(polite)}{said}{RNG.choice(after)}"
        intent = PARSER.parse(text)
        assert (intent.name, intent.value) == meant, text
    titles = ("play Before You Go", "play After Hours", "play Higher Love", "play Different World")
    for title in titles:
        assert PARSER.parse(f"Hey music, {title}").name == "play", title


def test_a_stop_for_a_while_is_a_pause() -> None:
    """Every way the table says stop, said for a second or a minute, pauses: the music is
    wanted back soon, and a stop would clear the queue."""
    stops = [p for p in TABLE["intents"]["stop"]["phrases"] if PARSER.parse(p).name == "stop"]
    assert len(stops) > 10
    for _ in range(60):
        while_ = RNG.choice(["for a second", "for a moment", "for a minute", "for a bit"])
        text = f"{RNG.choice(WAKES)} {RNG.choice(stops)} {while_}{RNG.choice(['', ' please'])}"
        assert PARSER.parse(text).name == "pause", text


def test_a_fragment_of_function_words_is_no_control() -> None:
    """Whisper writes a fragment ("I'm.", "It's.", "You.") for words it could not make out.
    Such words are in table phrases ("I'm sick of this song", "it's too loud", "what did you
    play"), and a fragment of them alone had been that control: a dislike, a volume change,
    the history. Now it means nothing. (Two such words can be a control misheard: "that
    this" is near "what's this".)"""
    words = ["i", "i'm", "you", "we", "it", "it's", "that's", "be", "do", "did", "am", "have"]
    words += ["they", "is", "was", "are", "this", "that", "my", "me", "your", "going", "you're"]
    for word in words:
        said = f"{RNG.choice(WAKES)} {word.capitalize()}{RNG.choice(['.', '?', ','])}"
        assert PARSER.parse(said).name in NOT_CONTROLS, said


def test_a_change_of_mind_in_words_of_its_own_is_a_cancel() -> None:
    """ "that was a mistake", "stop listening", "go away" had been `unknown` (the "sorry"
    sound after a wake the person did not want) or a stop of the music. A request with such
    words, a song called wrong or "stop listening to this song" keep their meaning."""
    openings = ["", "oh ", "sorry, ", "no, ", "never mind, "]
    shapes = [
        lambda: (
            f"{RNG.choice(['that was', 'it was', 'sorry,', ''])} {RNG.choice(['a mistake', 'an accident', 'my mistake'])}"
        ),
        lambda: (
            f"i {RNG.choice(['accidentally called you', 'called you by accident', 'woke you up by accident'])}"
        ),
        lambda: f"{RNG.choice(['stop', 'just stop'])} listening",
        lambda: f"{RNG.choice(['just ', 'please ', ''])}go away",
        lambda: RNG.choice(["don't worry about it", "no worries", "don't worry"]),
        lambda: (
            f"forget {RNG.choice(['i asked', 'what i said', 'everything i said', 'i said anything'])}"
        ),
        lambda: f"{RNG.choice(['false alarm', 'ignore me', 'ignore what i said'])}",
    ]
    for _ in range(60):
        text = f"{RNG.choice(WAKES)} {RNG.choice(openings)}{RNG.choice(shapes)()}".strip()
        assert PARSER.parse(text).name == "cancel", text
    kept = {
        "play Forget About It": "play",
        "play something to forget my worries": "play",
        "stop listening to this song": "stop",
        "wrong song": "unknown",
    }
    for said, name in kept.items():
        assert PARSER.parse(f"{RNG.choice(WAKES)} {said}").name == name, said


def test_no_more_music_stops_it_and_go_ahead_and_freeze_are_words_of_a_command() -> None:
    """ "no more music" had been a cancel (its "no"), "go ahead and play" the "sorry" sound
    and "freeze the music" nothing. "go ahead one track" stays a skip."""
    for _ in range(30):
        noun = RNG.choice(["music", "songs", "music please", "tunes", "", "music tonight"])
        assert PARSER.parse(f"{RNG.choice(WAKES)} no more {noun}").name == "stop", noun
        control, name = RNG.choice([("play", "resume"), ("skip", "skip"), ("pause", "pause")])
        text = f"{RNG.choice(WAKES)} go ahead and {control}"
        assert PARSER.parse(text).name == name, text
        text = f"{RNG.choice(WAKES)} freeze {RNG.choice(['', 'it', 'the music', 'this song'])}"
        assert PARSER.parse(text).name == "pause", text
    assert PARSER.parse("Hey music, go ahead one track.").name == "skip"
    genre = RNG.choice(["jazz", "country", "rap", "heavy metal"])
    assert PARSER.parse(f"Hey music, no more {genre}").name != "stop"
    assert PARSER.parse("Hey music, no more like this").name != "stop"
