"""A second listen for controls the text leaves unsure: the closed set of controls is
weighed on the command's audio.

A one-word control is often misheard as other words ("stop" -> "Stuff.", "who sings this"
-> "I will meet no things this"), and then nothing in the table is near it and nothing
happens. Here one phrase per control (the nearest in text to what Whisper wrote) is forced
on Whisper after the wake phrase, in one batched pass (heymusic.speech.second_listen), and
the likeliest is taken when it is about as likely as Whisper's own words and clearly
likelier than the next control. The bars keep chatter after a false wake, mood requests
and songs the catalog lacks from becoming controls (docs/commands.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from heymusic.speech.intents import Intent, IntentParser
from heymusic.speech.second_listen import RequestScorer

_LOGGER = logging.getLogger(__name__)

CONTROLS_WEIGHED = 9
"""Controls forced on the audio: one phrase each, all of the table's (nine)."""
MAX_LOSS = -1.0
"""A control is taken when Whisper finds it likelier than its own words by this much (nats
per token; negative: likelier)...
"""
MIN_LEAD = 2.5
"""...and this much likelier than the next control (nats per token). Strict: on espeak's
accented voices and over music, the likeliest control was as often another as the one said
when either bar was looser; at 1.5 the seed-0 bench took "wait" (heard "I know the way
to.") for volume up, 2.1 ahead (docs/commands.md)."""
UNSURE = ("unknown", "cancel")
"""Intents the text gives when it found no control: only these are checked. Checking the
controls the text found loosely too, and dropping those the audio did not back, dropped
right answers ("start playing again", heard word for word, is near no single table phrase)
as often as chatter (docs/commands.md)."""


class ControlListen:
    """Settles unsure commands on their audio; `settle` returns the intent to act on."""

    def __init__(self, parser: IntentParser, scorer: RequestScorer) -> None:
        self._parser = parser
        self._scorer = scorer

    @staticmethod
    def wanted(intent: Intent) -> bool:
        """Whether the text left this command unsure enough to listen again."""
        return intent.name in UNSURE

    def settle(self, audio: np.ndarray, transcript: str, intent: Intent) -> Intent:
        """`intent`, or the control the audio clearly says instead. A Whisper failure
        leaves `intent` with one warning line."""
        if not self.wanted(intent):
            return intent
        try:
            weighed = self.weigh(audio, transcript)
        except Exception as err:
            _LOGGER.warning(
                "could not check the command against the audio (%s: %s); answering from the text",
                type(err).__name__,
                err,
            )
            return intent
        return decide(weighed) or intent

    def weigh(self, audio: np.ndarray, transcript: str) -> list[Weighed]:
        """Each control weighed on the audio, likeliest first; empty when the audio is too
        short to score."""
        wake, said = self._parser.split_wake(transcript)
        controls = self._parser.near_controls(said, CONTROLS_WEIGHED)
        rests = [f" {phrase}." if wake else f"{phrase.capitalize()}." for phrase, _ in controls]
        scored = self._scorer.likelihoods(audio, wake, [said, *rests])
        if len(scored) != len(controls) + 1:
            return []
        own_ll, own_n = scored[0]
        own_rate = own_ll / own_n if own_n else 0.0
        weighed = [
            Weighed(phrase, meaning, own_rate - ll / max(n, 1))
            for (phrase, meaning), (ll, n) in zip(controls, scored[1:], strict=True)
        ]
        return sorted(weighed, key=lambda w: w.loss)


@dataclass(frozen=True)
class Weighed:
    """One control phrase forced on a command's audio."""

    phrase: str
    meaning: Intent
    loss: float
    """Nats per token below Whisper's own words. Per token, as a whole text a two-token
    "stop." is likelier than any sentence Whisper heard, whatever was said; Whisper gives
    no end-of-text likelihood for a forced text to settle that."""


def decide(weighed: list[Weighed]) -> Intent | None:
    """The likeliest control when it is clearly likelier than Whisper's own words and than
    the next control, else None."""
    if not weighed:
        return None
    best = weighed[0]
    lead = weighed[1].loss - best.loss if len(weighed) > 1 else float("inf")
    taken = best.loss <= MAX_LOSS and lead >= MIN_LEAD
    _LOGGER.info(
        "command checked against the audio: %r, %.2f nats a token below Whisper's words, "
        "%.2f ahead of the next (%s)",
        best.phrase,
        best.loss,
        lead,
        "taken" if taken else "not taken",
    )
    return best.meaning if taken else None
