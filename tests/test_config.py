"""Config: defaults, the sample file, and one clear line naming a bad key or value."""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from heymusic.config import ConfigError, Settings, data_dir, dump_settings, load_settings
from tests.conftest import PROJECT_DIR, TEST_SEED

HEYMUSIC = PROJECT_DIR / ".venv" / "bin" / "heymusic"


def test_absent_default_file_means_defaults() -> None:
    settings = load_settings()  # the isolated XDG config dir holds no config.toml
    assert settings.wake.models == ["hey_music.onnx"] and settings.vad.silence_seconds == 0.7
    assert settings.asr.beam_size == 1 and settings.player.kind == "auto"
    assert settings.log_transcripts is False


def test_sample_config_is_valid_and_holds_the_defaults() -> None:
    sample = load_settings(data_dir() / "config.sample.toml")
    defaults = Settings()
    assert sample.model_dump(exclude={"catalog"}) == defaults.model_dump(exclude={"catalog"})


def test_printed_config_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[wake]\nthreshold = 0.7\n[vad]\nsilence_seconds = 1.0\n")
    settings = load_settings(path)
    again = tmp_path / "again.toml"
    again.write_text(dump_settings(settings))
    assert load_settings(again) == settings
    assert tomllib.loads(dump_settings(settings))["wake"]["threshold"] == 0.7


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("[wake]\nthreshhold = 0.5\n", "'wake.threshhold': unknown key"),
        ("[wake]\nthreshold = 2\n", "'wake.threshold'"),
        ("[player]\nkind = 'radio'\n", "'player.kind'"),
        ("[vad\nsilence_seconds = 1\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, toml: str, says: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=says):
        load_settings(path)
    out = subprocess.run(
        [str(HEYMUSIC), "--config", str(path), "config"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and str(path) in out.stderr


def test_relative_model_names_resolve_from_the_package_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = Settings().model_path("x.onnx")
    assert path.is_absolute() and tmp_path not in path.parents


def _every_command(parser: argparse.ArgumentParser, argv: list[str]) -> Iterator[list[str]]:
    """argv of every leaf command of `parser`, its positionals filled with "x"."""
    sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    fill = [
        "x"
        for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    ]
    if not sub:
        yield [*argv, *fill]
        return
    for name, child in sub[0].choices.items():
        yield from _every_command(child, [*argv, *fill, name])


def test_config_option_goes_before_or_after_any_command(tmp_path: Path) -> None:
    from heymusic.cli import build_parser

    path = tmp_path / "mine.toml"
    parser = build_parser()
    commands = list(_every_command(parser, []))
    assert len(commands) > 15 and ["spotify", "status"] in commands
    for argv in commands:
        assert parser.parse_args([*argv, "--config", str(path)]).config == path, argv
        assert parser.parse_args(["--config", str(path), *argv]).config == path, argv
        assert parser.parse_args([*argv, "--debug"]).debug is True, argv
        assert parser.parse_args(argv).config is None, argv


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_config_file_that_is_not_there_is_one_line(tmp_path: Path, where: str) -> None:
    """A typo in --config silently meant "all defaults" before."""
    missing = tmp_path / "typo.toml"
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(missing)
    option = ["--config", str(missing)]
    argv = [*option, "config"] if where == "before" else ["config", *option]
    out = subprocess.run([str(HEYMUSIC), *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and str(missing) in out.stderr, out.stderr


def _documented_keys(text: str) -> set[str]:
    """Keys the sample sets or documents (a commented-out `# key = value` counts)."""
    keys, section = set(), ""
    for line in text.splitlines():
        if header := re.fullmatch(r"\[(\w+)\]\s*", line):
            section = header.group(1) + "."
        elif key := re.match(r"(?:# )?([a-z_]+) = ", line):
            keys.add(section + key.group(1))
    return keys


def _leaf_keys(table: dict[str, object], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in table.items():
        if isinstance(value, dict) and key != "intents":  # [intents] holds phrase lists
            keys |= _leaf_keys(value, f"{prefix}{key}.")
        elif key != "intents":
            keys.add(prefix + key)
    return keys


def test_the_sample_documents_every_key_config_prints() -> None:
    sample = (data_dir() / "config.sample.toml").read_text(encoding="utf-8")
    printed = _leaf_keys(tomllib.loads(dump_settings(Settings())))
    assert printed - _documented_keys(sample) == set()
    assert "[intents]" in sample


def test_intent_phrases_from_the_config(tmp_path: Path) -> None:
    """`[intents] KEY = [...]` adds phrases to the table; a bad entry is one line."""
    from heymusic.config import intent_keys

    rng = random.Random(TEST_SEED)
    words = ["amber", "lantern", "quietly", "harbour", "velvet", "orbit", "meadow", "copper"]
    key = rng.choice(intent_keys())
    phrase = " ".join(rng.sample(words, 3))
    path = tmp_path / "config.toml"
    path.write_text(f'[intents]\n{key} = ["{phrase}"]\n')
    assert load_settings(path).intents == {key: [phrase]}
    for bad, says in [
        (f'[intents]\n{key}x = ["{phrase}"]\n', f"no intent '{key}x'"),
        (f'[intents]\n{key} = "{phrase}"\n', f"'intents.{key}'"),
        (f'[intents]\n{key} = ["?!"]\n', "has no words"),
    ]:
        path.write_text(bad)
        out = subprocess.run(
            [str(HEYMUSIC), "config", "--config", str(path)], capture_output=True, text=True
        )
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert says in out.stderr and "Value error" not in out.stderr, out.stderr
