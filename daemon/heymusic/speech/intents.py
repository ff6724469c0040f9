"""Text to intent: structure first, then fuzzy matching (rapidfuzz) over data/intents.toml.

The transcript starts with the wake phrase, often misheard ("hey music" -> "Hamusic,",
"Hey, Musik"): everything up to the word that sounds like it is dropped first, then
hesitations and politeness. What is left is a control when it is near a table phrase, or
when its core (the words a control's frame does not explain: "play the next track" ->
"next") is a table phrase's core or is made only of words that mean one control ("music
off"). Otherwise a command starting with "play" and more words is a music request whose
query is kept as heard. A few shapes decide before any of that, whatever the letters are
near: one word left in a frame (the particle after "turn": "turn it on" is not "turn it
down"; "skip back"; "boost the volume"; "too quiet"), music like the song playing ("play
something like this"), and a stop said for a while (a pause).
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process

from heymusic.config import data_dir

INTENT_NAMES = (
    "play",
    "skip",
    "previous",
    "restart",
    "repeat",
    "stop",
    "stop_after",
    "sleep_timer",
    "pause",
    "resume",
    "volume",
    "more_like_this",
    "now_playing",
    "up_next",
    "say_again",
    "like",
    "dislike",
    "favourites",
    "history",
    "cancel",
    "unknown",
)
SURE_SCORE = 90.0
"""A phrase this close to a table entry wins even over a "play ..." reading."""
LIKELY_SCORE = 78.0
"""Below this nothing in the table matches: the command is unknown."""
MISHEARD_WORD_SCORE = 55.0
"""How near in letters a word must be to a table phrase's word to be that word misheard
("paws" 67 from "pause"; "freeze" is 50 from "resume")."""
DETAIL_BESIDE = 3
"""Words of a table phrase heard as they are, beside which one unknown word is detail."""
TITLE_END_SCORE = 90.0
"""How near a catalog title a request with its polite end must come to keep that end."""
WAKE_SCORE = 75.0
"""How close the leading words must sound to the wake phrase to be dropped."""
_MAX_WAKE_WORDS = 4
_MAX_BONUS_WORDS = 3
"""A word ending in "music" this early is the wake phrase; later it is part of the command."""

_MUSIC_NOUNS = frozenset({"music", "song", "songs", "track", "tracks", "tune", "tunes"})
"""Words that name music and nothing more: said alone they ask for it ("some music")."""
_NEGATIONS = frozenset({"dont", "not", "never", "didnt", "doesnt", "cant", "wont"})
"""Words that turn a phrase around: "don't skip this" is not "skip this" ("no" is as often
an interjection: "no, never mind"; "no more" is a negation, `_negations`)."""
_FUNCTION_WORDS = frozenset(
    "i im me my you your youre we us our it its this that thats these those they he she "
    "am is are was were be been being do does did have has had will would can could should "
    "going get got ever too so a an the of to from in on at for with and or but".split()
)
"""Words that carry no control alone, so never vote for one (`_by_signal`): Whisper writes a
fragment ("I'm.", "It's.", "You.") for what it could not make out, and "I'm." had been a
dislike (from "I'm sick of this song"), "It's." a volume change and "You." the history."""
_CLAUSE_BREAK = re.compile(r"\w[,.!?;:]+\s")
_CLAUSES_TRIED = 3
_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    w: 10 * (i + 2)
    for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())
}
_VOLUME_WORDS = {"volume", "percent", "level"}
_SECONDS_IN = {
    **dict.fromkeys(("second", "seconds", "sec", "secs"), 1),
    **dict.fromkeys(("minute", "minutes", "min", "mins"), 60),
    **dict.fromkeys(("hour", "hours", "hr", "hrs"), 3600),
}
_TIMER_AFTER = {"in", "after", "within"}
"""Before a time, these make a stop a sleep timer: "stop in 20 minutes"; "stop for a
minute" is a pause now (`pause_for`)."""
_TIMER_WORDS = frozenset("set start put a the sleep timer for me please music of".split())
"""Said with "sleep timer" and a time, nothing else: "set a sleep timer for 20 minutes"."""
MAX_TIMER_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Intent:
    """What the person asked for; `value` is a volume percent or a signed step like "+10",
    or "on"/"off" for repeat."""

    name: str
    query: str | None = None
    value: int | str | None = None

    def effect(self) -> str:
        """What the daemon does for it, in words: `ask` given a command, `simulate`'s lines."""
        if self.name == "volume":
            step = str(self.value)
            if step[:1] in "+-":
                return f"turns the volume {'up' if step[0] == '+' else 'down'} by {step[1:]}"
            return f"sets the volume to {step} %"
        if self.name == "repeat":
            return _REPEAT_EFFECTS[self.value == "off"]
        if self.name == "sleep_timer":
            seconds = int(str(self.value)) if str(self.value).isdigit() else 0  # or "off"
            if not seconds:
                return "turns the sleep timer off"
            return f"stops the music in {spoken_duration(seconds)} (a sleep timer)"
        return _EFFECTS.get(self.name, f"plays songs for {self.query!r}")


_EFFECTS = {
    "skip": "skips to the next track",
    "previous": "goes back to the previous track",
    "restart": "plays the song from its beginning",
    "stop": "stops the music",
    "stop_after": "stops the music when the song playing ends",
    "pause": "pauses the music",
    "resume": "resumes the music",
    "more_like_this": "queues more songs like the one playing",
    "now_playing": "says what is playing",
    "up_next": "says which song comes next",
    "say_again": "says its answer to the command before again",
    "like": "remembers that you like the song playing",
    "dislike": "remembers that you dislike the song playing, and skips it",
    "favourites": "plays songs you like",
    "history": "says what you have been listening to",
    "cancel": "does nothing (a change of mind)",
    "unknown": "plays the 'sorry' cue",
}


_REPEAT_EFFECTS = (
    "plays the song playing again and again",
    "plays on through the queue, no song repeated",
)


def spoken_duration(seconds: int) -> str:
    """A time as said: 1800 -> "30 minutes", 5400 -> "1 hour and 30 minutes"."""
    amounts = (seconds // 3600, seconds % 3600 // 60, seconds % 60)
    parts = zip(amounts, ("hour", "minute", "second"), strict=True)
    said = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return " and ".join(said) or "0 seconds"


def _duration(words: list[str]) -> tuple[int, int, int] | None:
    """(seconds, start, end) of the first time said in `words`: "20 minutes", "an hour",
    "half an hour", "an hour and a half", "twenty five minutes", "one and a half hours"."""
    for at, word in enumerate(words):
        unit = _SECONDS_IN.get(word)
        if unit is None:
            continue
        if words[max(0, at - 2) : at] in (["half", "an"], ["half", "a"]):
            start, amount = at - 2, 0.5
        elif at and words[at - 1] in ("a", "an"):
            start, amount = at - 1, 1.0
        else:
            half = words[max(0, at - 3) : at] == ["and", "a", "half"]
            first = at - 3 if half else at
            tens = first >= 2 and words[first - 2] in _TENS and words[first - 1] in _UNITS
            start = first - (2 if tens else 1)  # "twenty five", "25"
            number = _number_at(words, start) if start >= 0 else None
            start, amount = (start, number + 0.5 * half) if number else (at, 0.0)
        end = at + 1
        if words[end : end + 3] == ["and", "a", "half"]:
            end, amount = end + 3, amount + 0.5
        if amount > 0:
            return int(amount * unit), start, end
    return None


def _negations(words: list[str]) -> set[str]:
    """The negations among a command's words: "don't", "never", ... and "no" before "more"
    ("no more like this" is not "more like this")."""
    found = set(_NEGATIONS.intersection(words))
    if any(a == "no" and b == "more" for a, b in itertools.pairwise(words)):
        found.add("no")
    return found


def _words(text: str) -> list[str]:
    """Lowercase words without punctuation; apostrophes dropped ("what's" -> "whats")."""
    return [w.replace("'", "") for w in _WORD_RE.findall(text.lower().replace("’", "'"))]


def _phrase_list(raw: object, key: str, path: Path) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ValueError(f"{path}: '{key}' must be a list of strings")
    return [" ".join(_words(p)) for p in raw]


class IntentParser:
    """Loads the phrase table once; `parse` never raises and always returns a known name."""

    def __init__(
        self,
        wake_phrases: list[str] | None = None,
        volume_step: int = 10,
        table: Path | None = None,
        extra: Mapping[str, Sequence[str]] | None = None,
        describes: Callable[[str], bool] | None = None,
        title_score: Callable[[str], float] | None = None,
    ) -> None:
        """`extra`: more phrases per table intent key (the config's `[intents]`);
        `describes`: whether words only describe music (the recommender's, which knows the
        catalog's genres): "something calm" without a verb is then a request;
        `title_score`: how near words come to a catalog title, 0-100 (the recommender's):
        polite words ending a request stay when they end a title ("Don't Start Now")."""
        path = table or data_dir() / "intents.toml"
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        self._filler = set(_phrase_list(raw.get("filler", []), "filler", path))
        self._polite = _longest_first(_phrase_list(raw.get("polite", []), "polite", path))
        prefixes = _phrase_list(raw.get("play_prefixes", []), "play_prefixes", path)
        self._play_prefixes = _longest_first(prefixes)
        drop = _phrase_list(raw.get("play_query_drop", []), "play_query_drop", path)
        self._query_drop = _longest_first(drop)
        verbs = _phrase_list(raw.get("control_verbs", []), "control_verbs", path)
        self._control_verbs = _longest_first(verbs)
        self._frame = set(_phrase_list(raw.get("control_frame", []), "control_frame", path))
        self._like_playing = _like_playing(raw.get("like_playing", {}), path)
        self._pause_for = [
            f" {p} " for p in _phrase_list(raw.get("pause_for", []), "pause_for", path)
        ]
        markers = _phrase_list(raw.get("favourite_markers", []), "favourite_markers", path)
        self._favourite_markers = [f" {m} " for m in markers]
        self._choices: list[str] = []
        self._said: list[str] = []
        """The table's phrases as written ("what's playing"), for Whisper to score."""
        self._meaning: list[Intent] = []
        self._unsigned: set[Intent] = set()
        """Intents whose words vote for no control (`signal = false`): their phrases reuse
        other controls' words ("next" in "what's next", "stop" in "stop after this song")."""
        by_key: dict[str, Intent] = {}
        for key, spec in raw.get("intents", {}).items():
            name = spec.get("name", key)
            if name not in INTENT_NAMES:
                raise ValueError(f"{path}: intent '{key}' maps to unknown name {name!r}")
            value = spec.get("value")
            if isinstance(value, str):
                value = value.replace("step", str(volume_step))
            said_phrases = [*spec.get("phrases", []), *(extra or {}).get(key, [])]
            phrases = _phrase_list(said_phrases, f"intents.{key}.phrases", path)
            for phrase, said in zip(phrases, said_phrases, strict=True):
                self._choices.append(phrase)
                self._said.append(said)
                self._meaning.append(Intent(name, None, value))
            by_key[key] = Intent(name, None, value)
            if spec.get("signal") is False:
                self._unsigned.add(by_key[key])
        said_by = Counter(self._choices)
        self._exact = {
            phrase: meaning
            for phrase, meaning in zip(self._choices, self._meaning, strict=True)
            if said_by[phrase] == 1
        }
        """Each table phrase said by one intent only -> that intent: decided before any shape."""
        self._shapes: list[_Switch | _Particles] = [
            *_switches(raw.get("switches", {}), by_key, self._frame, path),
            *_particles(raw.get("particles", {}), by_key, self._frame, path),
        ]
        """Shapes where a word or two decide, tried in order (`[switches]`, `[particles]`)."""
        self._describes = describes
        self._title_score = title_score
        self._cores, self._signals = self._control_cores()
        self._words_of_cores = {w for core in self._cores for w in core.split()}
        self._table_words = {w for phrase in self._choices for w in phrase.split()}
        self._around = sorted({w for phrase in self._polite for w in phrase} | self._frame)
        wakes = list(wake_phrases or []) + ["hey music"]
        self._wakes = ["".join(_words(w)) for w in wakes if _words(w)]
        self._wake_last = {_words(w)[-1] for w in wakes if _words(w)}
        said_in_wakes = {word for w in wakes for word in _words(w)}
        openers = [*self._play_prefixes, *self._control_verbs]
        self._command_words = (self._words_of_cores | {v[0] for v in openers}) - said_in_wakes
        """Words that start commands ("stop", "play", "pause"): before "music" they make it
        part of the command ("stop the music"), not a misheard wake phrase ("a music")."""

    def parse(self, text: str, typed: bool = False) -> Intent:
        """The intent of one transcript (wake phrase included or not); `typed`: text a
        person wrote (Home Assistant, `ask`), where only the wake phrase itself is one, not
        what Whisper makes of it ("some music please" is a request, not "hey music").

        When the whole is not understood, so is what follows each of its first clause
        breaks: Whisper writes a wake phrase it could not make out as words of its own and
        then a comma ("K-M-U-N-E-K, turn the music off.").
        """
        if (timed := self._timed(text, typed)) is not None:
            return timed
        if (paused := self._paused(text, typed)) is not None:
            return paused
        intent = self._parse(text, typed)
        if intent.name not in ("unknown", "play"):
            return intent
        for clause_break in list(_CLAUSE_BREAK.finditer(text))[:_CLAUSES_TRIED]:
            # a request stays whole unless what comes before the break means nothing: "Good
            # news, play louder" is louder, "play Baby, One More Time" is a song
            if (
                intent.name == "play"
                and self._parse(text[: clause_break.start() + 1], typed).name != "unknown"
            ):
                continue
            said = text[clause_break.end() :]
            rest = self._parse(said, typed)
            if rest.name not in ("unknown", "cancel"):
                return rest
            if rest.name == "cancel" and intent.name == "unknown" and not self.only_wake(said):
                intent = rest  # "T-D-P, never mind": unless a control follows, a cancel
        return intent

    def _parse(self, text: str, typed: bool) -> Intent:
        heard = _WORD_RE.findall(text.replace("’", "'"))
        words = [w.lower().replace("'", "") for w in heard]
        start = self._wake_end(words, typed)
        heard, words = heard[start:], words[start:]
        keep = [i for i, w in enumerate(words) if w not in self._filler]
        heard, words = [heard[i] for i in keep], [words[i] for i in keep]
        lo, hi = self._strip_polite(words)
        polite_end = heard[hi:]
        heard, words = heard[lo:hi], words[lo:hi]
        if not words:
            return Intent("cancel")  # woken, then said nothing useful: do nothing
        joined = " ".join(words)
        if (volume := self._volume_set(words)) is not None:
            return Intent("volume", None, volume)
        if (exact := self._exact.get(joined)) is not None:
            return exact  # a table phrase as written: "repeat that" is say_again's, not a loop
        for shape in self._shapes:
            if (decided := shape.decide(words)) is not None:
                return decided
        best = process.extractOne(joined, self._choices, scorer=fuzz.ratio)
        core, opened = self._core(words)
        if core in self._cores and (core or opened):  # "unpause the music" is not "pause ..."
            return self._cores[core]
        negations = _negations(words)
        if self._like_playing is not None and self._like_playing.search(joined) and not negations:
            return Intent("more_like_this")
        if not core and _MUSIC_NOUNS & set(words):
            return Intent("resume")  # "some music please": "play music" without its verb
        found = self._play_query(heard, words)
        asked = set(_words(found[0])) if found is not None else set()
        if _MUSIC_NOUNS & asked and asked <= _MUSIC_NOUNS | self._frame | {"my", "our"}:
            return Intent("resume")  # "I want to hear some music", "shuffle my songs"
        if (
            best is not None
            and best[1] >= SURE_SCORE
            and not negations - set(self._choices[best[2]].split())
        ):
            return self._meaning[best[2]]
        if not opened and (control := self._by_signal(core)) is not None:
            # after "play" only a whole core is a control: "play something pump up" is music
            return control
        likely = best is not None and best[1] >= LIKELY_SCORE and self._heard_as(core, best[2])
        if found is not None:
            query, skipped = found
            padded = f" {' '.join(_words(query))} "
            if any(m in padded for m in self._favourite_markers):
                return Intent("favourites")
            # A verb after other words ("what did I listen to lately") is weaker evidence
            # of a request than a close table phrase; at the start it is a request.
            if not (skipped and likely):
                return Intent("play", self._title_end(query, polite_end), None)
        if self._describes is not None and self._describes(joined):
            # before the loose matches: "something calm" is near "something else" in letters
            return Intent("play", " ".join(heard), None)
        if best is not None and likely:
            return self._meaning[best[2]]
        if len(words) <= 6 and core:  # a word of its own: "the music" is not "stop the music"
            # of the phrases as near, the one with the most words: "what's the next song X"
            # holds "next" but is "what's the next song"
            near = process.extract(joined, self._choices, scorer=fuzz.token_set_ratio, limit=None)
            loose = max(near, key=lambda c: (c[1], len(self._choices[c[2]].split())), default=None)
            content = set(self._choices[loose[2]].split()) - _FUNCTION_WORDS if loose else set()
            shared = set(words) & content
            if (
                loose is not None
                and loose[1] >= SURE_SCORE
                and set(core.split()) & content
                and (shared == content or len(shared) > 1)
                and self._heard_as(core, loose[2], detail=True)
            ):  # a word of its own, not "I'm." (a subset of "I'm sick of this song"), nor one
                # word of several: "Max." is not "max volume"
                return self._meaning[loose[2]]
        return Intent("unknown")

    def split_wake(self, text: str, typed: bool = False) -> tuple[str, str]:
        """(the wake phrase as written, the command after it): "Hey music, skip." ->
        ("Hey music,", " skip.")."""
        found = list(_WORD_RE.finditer(text.replace("’", "'")))
        words = [m.group().lower().replace("'", "") for m in found]
        start = self._wake_end(words, typed)
        if start == 0:
            return "", text
        cut = found[start - 1].end()
        if cut < len(text) and text[cut] in ",.!?:;":
            cut += 1
        return text[:cut], text[cut:]

    @property
    def play_verbs(self) -> list[str]:
        """The table's ways to ask for music ("play", "i'd like to hear"), apostrophes dropped."""
        return [" ".join(p) for p in self._play_prefixes]

    def only_wake(self, text: str) -> bool:
        """Whether a transcript holds nothing after the wake phrase ("Hey music.")."""
        return not _words(self.split_wake(text)[1])

    def near_controls(self, said: str, n: int) -> list[tuple[str, Intent]]:
        """One table phrase per control (the nearest in text to what was heard, the first
        when nothing was), the `n` nearest controls: the closed set a command's audio is
        weighed against (heymusic.speech.control_listen)."""
        words = " ".join(_words(said))
        nearest: dict[Intent, tuple[float, str]] = {}
        for phrase, written, meaning in zip(self._choices, self._said, self._meaning, strict=True):
            if meaning.name == "cancel":
                continue
            score = fuzz.WRatio(words, phrase) if words else 0.0
            if meaning not in nearest or score > nearest[meaning][0]:
                nearest[meaning] = (score, written)
        ranked = sorted(nearest.items(), key=lambda item: -item[1][0])
        return [(written, meaning) for meaning, (_, written) in ranked[:n]]

    def _core(self, words: list[str]) -> tuple[str, bool]:
        """(the core, whether a control verb opened it): "go to the next track" -> "next"."""
        opened = False
        for verb in self._control_verbs:
            if words[: len(verb)] == verb:
                words, opened = words[len(verb) :], True
                break
        return " ".join(w for w in words if w not in self._frame), opened

    def _paused(self, text: str, typed: bool) -> Intent | None:
        """A stop said for a while ("stop for a second", "turn it off for a minute") is a
        pause: the music is wanted back soon, and a stop clears the queue. None otherwise."""
        said = f" {' '.join(_words(text))} "
        for phrase in self._pause_for:
            if phrase in said and self._parse(said.replace(phrase, " "), typed).name == "stop":
                return Intent("pause")
        return None

    def _timed(self, text: str, typed: bool) -> Intent | None:
        """A stop (or a pause) said with a time: to wait first, a sleep timer ("stop the
        music in 30 minutes", "turn it off after an hour", "set a sleep timer for 20
        minutes"); for a while, a pause now ("stop for ten minutes"); None otherwise ("set a
        timer" is a kitchen's business)."""
        words = _words(text)
        found = _duration(words)
        if found is None:
            return None
        seconds, start, end = found
        said_before = words[start - 1] if start else ""
        linked = said_before in _TIMER_AFTER or said_before == "for"  # "in 20 minutes"
        rest = words[: start - 1 if linked else start] + words[end:]
        rest = [w for w in rest[self._wake_end(rest, typed) :] if w not in self._filler]
        lo, hi = self._strip_polite(rest)
        timer = {"sleep", "timer"} <= set(rest[lo:hi]) and set(rest[lo:hi]) <= _TIMER_WORDS
        stopped = linked and self._parse(" ".join(rest), typed).name in ("stop", "pause")
        if not (timer or stopped) or not 0 < seconds <= MAX_TIMER_SECONDS:
            return None
        if not timer and said_before == "for":
            return Intent("pause")
        return Intent("sleep_timer", None, seconds)

    def _control_cores(self) -> tuple[dict[str, Intent], dict[str, Intent]]:
        """Each table phrase's core -> its intent (cores two intents share are dropped:
        "play again" and "play that again"), and each core word found in one intent's cores
        only -> that intent ("off" -> stop, "louder" -> volume up). Some intents' words vote
        for nothing (`signal = false`): "what's next" asks, and "next" alone still skips."""
        by_core: dict[str, set[Intent]] = {}
        by_word: dict[str, set[Intent]] = {}
        for phrase, meaning in zip(self._choices, self._meaning, strict=True):
            if meaning.name == "cancel":
                continue  # "no", "sorry": words too common to carry a control
            core, _ = self._core(phrase.split())
            by_core.setdefault(core, set()).add(meaning)
            if meaning in self._unsigned:
                continue
            for word in set(core.split()) - _FUNCTION_WORDS:
                by_word.setdefault(word, set()).add(meaning)
        cores = {c: next(iter(m)) for c, m in by_core.items() if len(m) == 1}
        signals = {w: next(iter(m)) for w, m in by_word.items() if len(m) == 1}
        return cores, signals

    def _heard_as(self, core: str, choice: int, detail: bool = False) -> bool:
        """Whether a command is the table phrase `choice` it is near in letters: misheard,
        each word the table lacks sounding like a word of the phrase or of the politeness
        and frame around commands, misheard too ("come your pause" is "can you pause";
        "freeze the music" is not "resume the music"); or with `detail` (or beside three of
        the phrase's words), heard right with one word more ("pause for a second" is
        "pause"; "turn left at the next corner" is not "next"). Either way a negation the
        phrase lacks turns it around: "I don't like it" is not "I like it"."""
        said = self._choices[choice].split()
        words = core.split()
        if _negations(words) - set(said):
            return False
        near = said if detail else [*said, *self._around]
        strange = [
            w
            for w in words
            if w not in self._table_words
            and max(fuzz.ratio(w, other) for other in near) < MISHEARD_WORD_SCORE
        ]
        # one word of detail may stand beside the phrase's words, when there are some to
        # stand beside ("what have I been listening to recently"), never for the only one
        kept = sum(w in said for w in words)
        return len(strange) <= (1 if detail or kept >= DETAIL_BESIDE else 0)

    def _by_signal(self, core: str) -> Intent | None:
        """The one control this core's words point to ("music off" -> stop); None when a
        word of it belongs to no control core ("play the next episode" is a request), or
        when it is negated: "don't" is a word of "I don't like it" alone, and "don't turn
        it up" had been a dislike."""
        known = [w for w in core.split() if w in self._signals or w in self._words_of_cores]
        if not core or len(known) < len(core.split()) or _negations(core.split()):
            return None
        votes = {self._signals[w] for w in core.split() if w in self._signals}
        return votes.pop() if len(votes) == 1 else None

    def _wake_end(self, words: list[str], typed: bool = False) -> int:
        """How many leading words are the wake phrase (as misheard, unless `typed`); 0 when
        it is absent."""
        if typed:
            said = ["".join(words[:k]) for k in range(1, _MAX_WAKE_WORDS + 1)]
            return next((k + 1 for k, glued in enumerate(said) if glued in self._wakes), 0)
        best_k, best_score = 0, WAKE_SCORE
        for k in range(1, min(_MAX_WAKE_WORDS, len(words)) + 1):
            glued = "".join(words[:k])
            score = max(fuzz.ratio(glued, w) for w in self._wakes)
            last = words[k - 1]
            ends_wake = last.endswith("music") or any(
                fuzz.ratio(last, w) >= 80 for w in self._wake_last
            )
            if (
                k <= _MAX_BONUS_WORDS
                and ends_wake
                and not self._command_words & set(words[: k - 1])
            ):
                score = max(score, 99.0)
            if score > best_score:
                best_k, best_score = k, score
            if ends_wake and score >= 99.0:
                break  # "hey musik, music on": the first wake-ending word ends the phrase
        return best_k

    def _title_end(self, query: str, polite_end: list[str]) -> str:
        """The request with as many of the polite words that followed it as make it nearest
        a catalog title, when that is near enough (TITLE_END_SCORE): "Don't Start Now now"
        -> "Don't Start Now", "jazz please" -> "jazz"."""
        if not polite_end or self._title_score is None:
            return query
        ends = [" ".join([query, *polite_end[:k]]) for k in range(len(polite_end) + 1)]
        scores = [self._title_score(end) for end in ends]
        best = max(range(len(ends)), key=lambda k: (scores[k], -k))
        return ends[best] if best and scores[best] >= TITLE_END_SCORE else query

    def _strip_polite(self, words: list[str]) -> tuple[int, int]:
        """Politeness off both ends, over and over ("okay so could you ... please thanks"),
        but never all that follows a request's verb ("play Thank You"): a request's end may
        be a title's (`_title_end` puts it back)."""
        lo, hi = 0, len(words)
        changed = True
        while changed and lo < hi:
            changed = False
            for phrase in self._polite:
                if words[lo : lo + len(phrase)] == phrase:
                    lo, changed = lo + len(phrase), True
        request = next((len(p) for p in self._play_prefixes if words[lo : lo + len(p)] == p), 0)
        changed = True
        while changed and lo < hi:
            changed = False
            for phrase in self._polite:
                n = len(phrase)
                if hi - n >= lo and words[hi - n : hi] == phrase:
                    if request and hi - n <= lo + request:
                        continue
                    hi, changed = hi - n, True
        return lo, hi

    def _play_query(self, heard: list[str], words: list[str]) -> tuple[str, int] | None:
        """The request after a play prefix at the start, or after up to three junk words (the
        wake phrase misheard into other words: "hey new sick, play jazz", FINDINGS), and
        how many words came before the prefix."""
        for skip in range(min(4, len(words))):
            if _negations(words[:skip]):
                return None  # "don't play more like this" asks for nothing
            query = self._query_after_prefix(heard[skip:], words[skip:])
            if query is not None:
                return query, skip
        return None

    def _query_after_prefix(self, heard: list[str], words: list[str]) -> str | None:
        for prefix in self._play_prefixes:
            n = len(prefix)
            if words[:n] == prefix and len(words) > n:
                rest = n
                for drop in self._query_drop:
                    if words[rest : rest + len(drop)] == drop and len(words) > rest + len(drop):
                        rest += len(drop)
                        break
                return " ".join(heard[rest:])
        return None

    @staticmethod
    def _volume_set(words: list[str]) -> int | None:
        """ "volume 30", "set the volume to fifty percent" -> 30 / 50; None when no number."""
        if not _VOLUME_WORDS & set(words):
            return None
        for i in range(len(words)):
            number = _number_at(words, i)
            if number is not None:
                return max(0, min(100, number))
        return None


@dataclass(frozen=True)
class _Particles:
    """One shape where a single word decides (`[particles.<group>]` in the table)."""

    verbs: list[list[str]]
    """Longest first ("put on" before "put")."""
    frame: frozenset[str]
    """Its own framing words and a control's ("the", "it", "a bit")."""
    needs: frozenset[str]
    means: Mapping[str, Intent]
    question: bool = False
    """A question: it opens (after framing words) with one of `needs`, and words it does
    not know may stand in it ("who live up next", misheard, is still no skip)."""

    def decide(self, words: list[str]) -> Intent | None:
        """The intent the words left name ("turn the music back on" -> resume; "start it
        over from the beginning" -> restart); None when the group does not apply, or a
        word left names nothing (but in a question) or another intent ("turn left at the
        corner")."""
        if self.needs and not self.needs & set(words):
            return None
        verb = next((v for v in self.verbs if words[: len(v)] == v), [])
        words = words[len(verb) :]
        if self.question:
            opening = next((w for w in words if w in self.needs or w not in self.frame), "")
            if opening not in self.needs or _negations(words):
                return None
            words = [w for w in words if w in self.means]
        named = {self.means.get(w) for w in words if w not in self.frame}
        return named.pop() if len(named) == 1 else None


@dataclass(frozen=True)
class _Switch:
    """A mode turned on or off (`[switches.<mode>]` in the table): "put this song on loop",
    "turn looping off", "stop repeating this track"."""

    names: frozenset[str]
    """Words that name the mode ("repeat", "looping")."""
    off: frozenset[str]
    """Words that turn it off ("off", "stop", "no"); without one it is turned on."""
    frame: frozenset[str]
    """Every other word it may be said with ("put", "this", "song", "on")."""
    on_intent: Intent
    off_intent: Intent

    def decide(self, words: list[str]) -> Intent | None:
        """On or off when the mode is named and every word belongs to the shape; else None
        ("play my loop playlist" is a request). Two off words undo each other: "don't stop
        repeating" keeps it on."""
        if not self.names & set(words) or not set(words) <= self.names | self.off | self.frame:
            return None
        return self.off_intent if sum(w in self.off for w in words) % 2 else self.on_intent


def _switches(
    raw: object, by_key: Mapping[str, Intent], control_frame: set[str], path: Path
) -> list[_Switch]:
    """The table's `[switches.<mode>]`: `names`, `off`, `frame`, and the intents (keys of the
    table) it turns `on` and `off`."""
    if not isinstance(raw, dict) or not all(isinstance(g, dict) for g in raw.values()):
        raise ValueError(f"{path}: [switches] must hold tables, [switches.<mode>]")
    switches = []
    for name, spec in raw.items():
        key = f"switches.{name}"
        intents = (spec.get("on"), spec.get("off_intent"))
        if not all(i in by_key for i in intents):
            raise ValueError(f"{path}: [{key}] needs `on` and `off_intent`, intents of the table")
        words = {
            part: frozenset(_phrase_list(spec.get(part, []), f"{key}.{part}", path))
            for part in ("names", "off", "frame")
        }
        switches.append(
            _Switch(
                words["names"],
                words["off"],
                words["frame"] | control_frame,
                by_key[intents[0]],
                by_key[intents[1]],
            )
        )
    return switches


def _longest_first(phrases: list[str]) -> list[list[str]]:
    """Phrases as word lists, longest first: "would you please" comes off whole, not "please"."""
    return sorted((p.split() for p in phrases), key=len, reverse=True)


def _particles(
    raw: object, by_key: Mapping[str, Intent], control_frame: set[str], path: Path
) -> list[_Particles]:
    """The table's `[particles.<group>]`, in order."""
    if not isinstance(raw, dict) or not all(isinstance(g, dict) for g in raw.values()):
        raise ValueError(f"{path}: [particles] must hold tables, [particles.<group>]")
    groups = []
    for name, spec in raw.items():
        key = f"particles.{name}"
        extra = sorted(set(spec) - {"verbs", "frame", "needs", "means", "question"})
        means, verbs = spec.get("means", {}), spec.get("verbs", [])
        unknown = sorted(v for v in means.values() if v not in by_key)
        if extra or not means or unknown:
            raise ValueError(
                f"{path}: [{key}] needs `means` (word -> an intent of the table) and knows "
                f"only verbs, frame, needs, question; unknown keys {extra}, intents {unknown}"
            )
        groups.append(
            _Particles(
                verbs=_longest_first(_phrase_list(verbs, f"{key}.verbs", path)),
                frame=frozenset(_phrase_list(spec.get("frame", []), f"{key}.frame", path))
                | control_frame,
                needs=frozenset(_phrase_list(spec.get("needs", []), f"{key}.needs", path)),
                means={word: by_key[intent] for word, intent in means.items()},
                question=spec.get("question") is True,
            )
        )
    return groups


def _like_playing(raw: object, path: Path) -> re.Pattern[str] | None:
    """The table's `[like_playing]` as one pattern over a command's words: music, likeness,
    the song playing and an optional noun for it, at the end; None without the table."""
    if not isinstance(raw, dict) or not raw:
        return None
    parts = {
        key: "|".join(re.escape(p) for p in _phrase_list(raw.get(key, []), key, path))
        for key in ("music", "likeness", "playing", "nouns")
    }
    if not all(parts.values()):
        raise ValueError(f"{path}: [like_playing] needs music, likeness, playing and nouns")
    return re.compile(
        rf"\b(?:{parts['music']}) (?:{parts['likeness']}) (?:{parts['playing']})"
        rf"(?: (?:{parts['nouns']}))?$"
    )


def _number_at(words: list[str], i: int) -> int | None:
    word = words[i]
    if word.isdigit():
        return int(word)
    if word in _UNITS:
        return _UNITS[word]
    if word in _TENS:
        unit = _UNITS.get(words[i + 1], 0) if i + 1 < len(words) else 0
        return _TENS[word] + (unit if unit < 10 else 0)
    if word == "hundred":
        return 100
    return None
