"""ASR: the Whisper dir is joined once from the installed parts; commands transcribe in noise."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.speech.asr import (
    COMMAND_EXAMPLES,
    MUSIC_WORDS,
    Transcriber,
    prompt_echo,
    until_repeated,
    whisper_model_dir,
)
from heymusic.training.wake import data as wake_data
from tests.conftest import PROJECT_DIR, TEST_SEED, mix_noise, read_pcm

HEYMUSIC = PROJECT_DIR / ".venv" / "bin" / "heymusic"


def test_weights_are_joined_once_and_a_broken_join_is_redone(
    whisper_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(whisper_dir.parents[1]))
    before = (whisper_dir / "model.bin").stat().st_mtime_ns
    assert whisper_model_dir(Settings()) == whisper_dir
    assert (whisper_dir / "model.bin").stat().st_mtime_ns == before

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    half = tmp_path / "heymusic" / "whisper-base" / "model.bin"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"interrupted")
    rebuilt = whisper_model_dir(Settings())
    assert (rebuilt / "model.bin").stat().st_size == (whisper_dir / "model.bin").stat().st_size
    assert {p.name for p in rebuilt.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }


def test_weights_that_are_not_the_expected_ones_are_refused_at_the_join(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The join checks the SHA-256 the README names; other weights leave no model.bin."""
    from heymusic.speech import asr

    rng = random.Random(TEST_SEED)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(asr, "WHISPER_BASE_SHA256", f"{rng.getrandbits(256):064x}")
    with pytest.raises(UserError, match="not the expected ones"):
        whisper_model_dir(Settings())
    assert not (tmp_path / "heymusic" / "whisper-base" / "model.bin").exists()


def test_configured_dir_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings.model_validate({"asr": {"model_dir": str(tmp_path)}})
    with pytest.raises(UserError, match="holds no model.bin"):
        whisper_model_dir(settings)


def test_transcribes_a_command_in_noise(whisper_dir: Path, synth: Callable[..., Path]) -> None:
    settings = Settings.model_validate({"asr": {"model_dir": str(whisper_dir)}})
    transcriber = Transcriber(settings)
    audio = mix_noise(read_pcm(synth("hey music, stop the music", pad_after=0.3)), snr_db=15)
    text = transcriber.transcribe(audio).lower()
    assert "stop" in text and "music" in text, text
    assert transcriber.transcribe(audio[:0]) == ""


def test_transcribe_command_line(
    whisper_dir: Path, synth: Callable[..., Path], tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[asr]\nmodel_dir = "{whisper_dir}"\n')
    wav = synth("hey music, what's playing", pad_after=0.3)
    out = subprocess.run(
        [str(HEYMUSIC), "--config", str(config), "transcribe", str(wav)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=True,
    )
    assert "playing" in out.stdout.lower(), out.stdout


WAKE = ("hey", "music")


def test_prompt_echo_is_an_example_request_word_for_word_or_a_loop() -> None:
    requests = [c.rstrip(".?") for c in COMMAND_EXAMPLES if c.startswith("play ")]
    assert requests
    for request in requests:
        words = tuple(request.lower().split())
        for wake in ("Hey music, ", "Hey, music. ", "hey music ", ""):
            assert prompt_echo(f"{wake}{request.capitalize()}.", WAKE) == words
        assert prompt_echo(f"Hey music, {request} with strings.", WAKE) is None
    rng = random.Random(TEST_SEED)
    vocab = wake_data.dictionary_words()
    for _ in range(300):  # ordinary requests, each word said once: nothing echoed
        said = rng.sample(vocab, rng.randint(1, 8))
        base = rng.choice([*requests, "play"])
        assert prompt_echo(f"Hey music, {base} {' '.join(said)}.", WAKE) is None
        unit = " ".join(said[: rng.randint(1, 6)])
        loop = f"Hey music, {base} {unit}, {unit}, {unit}"
        assert prompt_echo(loop, WAKE) == ()
        sentence = f"Hey music, play {' '.join(said[:2])}."
        assert prompt_echo(f"{sentence} {sentence}", WAKE) == ()
    assert prompt_echo("Hey music, next. Next.", WAKE) is None  # one word said twice


def test_the_prompts_music_words_in_its_order_are_the_prompt_copied() -> None:
    """Far across a room Whisper writes its prompt in pieces: three or more of its music
    words in its order, or an example request twice. Two in order, or any number in another
    order, may be asked for ("hip hop, R&B", "sad rock")."""
    listed = [w.strip() for w in MUSIC_WORDS.rstrip(".").split(",")]
    requests = [c.rstrip(".") for c in COMMAND_EXAMPLES if c.startswith("play ")]
    rng = random.Random(TEST_SEED)
    for _ in range(200):
        start = rng.randrange(len(listed) - 1)
        n = rng.randint(3, len(listed) - start) if start <= len(listed) - 3 else 2
        run = ", ".join(listed[start : start + n])
        said = f"Hey music, {rng.choice(['play some ', 'play ', ''])}{run}."
        assert prompt_echo(said, WAKE) == (() if n >= 3 else None), said
        other = rng.sample(listed, 3)
        ordered = all(listed.index(b) == listed.index(a) + 1 for a, b in itertools.pairwise(other))
        said = f"Hey music, play {' '.join(other)}."
        assert prompt_echo(said, WAKE) == (() if ordered else None), said
        request = rng.choice(requests)
        assert prompt_echo(f"Hey music, {request}, {request.lower()}.", WAKE) == ()


def test_a_loop_on_what_was_said_is_cut_to_its_first_sentence() -> None:
    """Random table commands and requests, looped two to four times with the wake phrase
    spelled each time another way and a broken-off end: the command, once; sentences that
    differ, and a word said twice, stay."""
    from heymusic.speech.intents import IntentParser

    parser = IntentParser()
    rng = random.Random(TEST_SEED)
    vocab = wake_data.dictionary_words()
    table = [c.rstrip(".?") for c in COMMAND_EXAMPLES]
    spellings = ["Hey music, ", "Hey, music, ", "Hey music. ", "hey music "]
    for _ in range(200):
        said = rng.choice([*table, f"play {' '.join(rng.sample(vocab, 3))}"])
        once = f"{rng.choice(spellings)}{said}."
        loop = " ".join(f"{rng.choice(spellings)}{said}." for _ in range(rng.randint(2, 4)))
        loop += rng.choice(["", " Hey", " Hey music", f" {said.split()[0]}"])
        cut = until_repeated(loop, WAKE)
        assert parser.parse(cut) == parser.parse(once) and len(cut) <= len(once) + 2, loop
        other = f"play {' '.join(rng.sample(vocab, 3))}"
        assert until_repeated(f"{once} {other}.", WAKE) == f"{once} {other}."
    assert until_repeated("Hey music, next. Next.", WAKE) == "Hey music, next. Next."


ECHOED = (
    ("da", "could you pause please"),
    ("fi", "could you pause please"),
    ("pl", "play Brown Eyed Girl by Van Morrison"),
)
"""Voices Whisper base hears badly: here each made it write its prompt (a request of it
word for word, or a loop) instead of the command."""


def test_a_transcript_that_is_the_prompt_is_decoded_again_without_it(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    transcriber = Transcriber(Settings.model_validate({"asr": {"model_dir": str(whisper_dir)}}))
    echoed = 0
    for voice, command in ECHOED:
        audio = read_pcm(synth(f"hey music, {command}", voice, pad_after=0.5))
        prompted = transcriber.decode(audio, transcriber.prompt)
        heard = transcriber.transcribe(audio)
        if prompt_echo(prompted, WAKE) is None:
            assert heard == prompted
            continue
        echoed += 1
        assert heard == transcriber.decode(audio, ""), (voice, prompted, heard)
    assert echoed, "these voices no longer make Whisper echo its prompt: pick others"

    # someone who does ask for an example request gets it, though it reads as an echo
    request = [c.rstrip(".") for c in COMMAND_EXAMPLES if c.startswith("play ")][-1]
    audio = read_pcm(synth(f"hey music, {request}", pad_after=0.5))
    prompted = transcriber.decode(audio, transcriber.prompt)
    assert prompt_echo(prompted, WAKE) is not None
    assert transcriber.transcribe(audio) == prompted


LOOPED = (("et", 140, "play Say Less by Lisi"),)
"""A voice Whisper base loops on, with its prompt and without ("seele seele seele")."""


def test_a_transcript_that_loops_without_the_prompt_too_is_not_acted_on(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    """Words written over and over are not what was said, however sure Whisper was of
    them; a command it heard is not taken for a loop."""
    transcriber = Transcriber(Settings.model_validate({"asr": {"model_dir": str(whisper_dir)}}))
    for voice, speed, command in LOOPED:
        audio = read_pcm(synth(f"hey music, {command}", voice, speed, pad_after=0.5))
        heard = transcriber.hear(audio)
        assert heard.looped, ("this voice no longer makes Whisper loop: pick another", heard)
        assert not heard.clear(-99.0)
    audio = read_pcm(synth("hey music, skip this song", pad_after=0.5))
    heard = transcriber.hear(audio)
    assert not heard.looped and heard.clear(-99.0), heard


def test_at_30_s_the_decode_is_faster_whispers_and_shorter_padding_hears_commands(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    """`decode` is faster-whisper's `transcribe` for one window, padded to fewer seconds: at
    30 s its transcripts are faster-whisper's own, and at the default 10 s a plain command
    is still heard."""
    full = Transcriber(
        Settings.model_validate({"asr": {"model_dir": str(whisper_dir), "pad_seconds": 30}})
    )
    short = Transcriber(Settings.model_validate({"asr": {"model_dir": str(whisper_dir)}}))
    rng = random.Random(TEST_SEED)
    vocab = wake_data.dictionary_words()
    for _ in range(4):
        voice = rng.choice(["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-029"])
        said = f"hey music, play {' '.join(rng.sample(vocab, rng.randint(2, 5)))}"
        audio = read_pcm(synth(said, voice, pad_after=0.5))
        for prompt in (full.prompt, ""):
            segments, _ = full.model.transcribe(
                audio.astype("float32") / 32768.0,
                language="en",
                beam_size=1,
                temperature=0.0,
                initial_prompt=prompt or None,
                condition_on_previous_text=False,
                without_timestamps=True,
                max_new_tokens=48,
                vad_filter=False,
            )
            theirs = " ".join(s.text.strip() for s in segments).strip()
            assert full.decode(audio, prompt) == theirs, (voice, said)
    control = rng.choice(["skip this song", "pause", "volume up", "what's playing"])
    audio = read_pcm(synth(f"hey music, {control}", rng.choice(["en-us", "en-gb"])))
    assert control.split()[-1] in short.transcribe(audio).lower()


def test_a_file_longer_than_whispers_window_is_heard_to_its_end(
    whisper_dir: Path, synth: Callable[..., Path]
) -> None:
    """`heymusic transcribe` takes a whole file: past 30 s, Whisper hears it window after
    window, not the first 30 s alone."""
    transcriber = Transcriber(Settings.model_validate({"asr": {"model_dir": str(whisper_dir)}}))
    word = random.Random(TEST_SEED).choice(["skip", "pause", "louder", "stop"])
    audio = read_pcm(synth(f"hey music, {word}", pad_before=31.0, pad_after=0.5))
    assert word in transcriber.transcribe(audio).lower()
