"""The command line: fast help, and one clear line (exit 2) for inputs that cannot work."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from heymusic.config import Settings
from tests.conftest import PROJECT_DIR

HEYMUSIC = PROJECT_DIR / ".venv" / "bin" / "heymusic"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HEYMUSIC), *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands() -> None:
    out = _run("--help")
    assert out.returncode == 0
    for command in ("run", "simulate", "transcribe", "doctor", "config"):
        assert command in out.stdout


def test_missing_wake_model_is_one_line_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[wake]\nmodels = ["no_such_model.onnx"]\n[catalog]\nsource = ""\n')
    wav = tmp_path / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(wav), "trim", "0", "1"], check=True)
    out = _run("--config", str(config), "simulate", str(wav), "--json")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines()[-1].startswith("heymusic: wake model")
    assert "no_such_model.onnx" in out.stderr and "Traceback" not in out.stderr


def test_missing_input_file_is_one_line(tmp_path: Path) -> None:
    out = _run("transcribe", str(tmp_path / "nothing.wav"))
    assert out.returncode == 2 and "nothing.wav" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_bad_negative_hours_is_one_line_before_any_work(tmp_path: Path) -> None:
    for hours in ("0", "-2", "1e6"):
        out = _run("wake-eval", "--work-dir", str(tmp_path), "--negative-hours", hours)
        assert out.returncode == 2 and "--negative-hours" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not any(tmp_path.iterdir())  # nothing was built


def test_bad_member_counts_are_one_line_before_any_work(tmp_path: Path) -> None:
    for option, count in (("--members", "0"), ("--conv-members", "-1")):
        out = _run(
            "train-wake", "--work-dir", str(tmp_path), "--out", str(tmp_path / "m"), option, count
        )
        assert out.returncode == 2 and option in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not any(tmp_path.iterdir())  # nothing was built


def test_doctor_says_something_about_every_part() -> None:
    out = _run("doctor")
    names = [line.split()[1] for line in out.stdout.splitlines() if line.split()]
    assert names == [
        "wake",
        "asr",
        "recommender",
        "microphone",
        "speaker",
        "echo",
        "catalog",
        "music",
        "spotify",
    ]
    assert "ok    echo         echo cancellation: libspeexdsp loads" in out.stdout
    assert out.returncode in (0, 1)


def test_doctor_names_a_missing_query_encoder_file(tmp_path: Path) -> None:
    """A folder with the tokenizer but no model passed before: the daemon then failed later."""
    settings = Settings()
    shipped = settings.model_path(settings.recommender.query_encoder_dir)
    encoder = tmp_path / "query_encoder"
    shutil.copytree(shipped, encoder, ignore=shutil.ignore_patterns("model.onnx"))
    config = tmp_path / "config.toml"
    config.write_text(f'[recommender]\nquery_encoder_dir = "{encoder}"\n')
    out = _run("--config", str(config), "doctor")
    line = next(x for x in out.stdout.splitlines() if x.split()[1:2] == ["recommender"])
    assert line.startswith("FAIL") and str(encoder / "model.onnx") in line, line
    assert out.returncode == 1


def test_spotify_status_without_a_client_id_says_to_set_it_first() -> None:
    """`login` asks for the client id first, so `status` must not send people there."""
    status, login = _run("spotify", "status"), _run("spotify", "login")
    for out in (status, login):
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "client_id" in out.stderr and "developer.spotify.com" in out.stderr, out.stderr
    assert status.stderr == login.stderr
