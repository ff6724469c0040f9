"""The systemd unit parses cleanly (systemd-analyze verify) and keeps its key settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

UNIT = PROJECT_DIR / "systemd" / "heymusic.service"


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def installed_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout (verify checks the binary exists)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing: install Debian 'systemd' (make deps-test does)")
    text = UNIT.read_text().replace("/opt/heymusic/.venv", str(PROJECT_DIR / ".venv"))
    unit = tmp_path / "heymusic.service"
    unit.write_text(text)
    return unit


def test_unit_verifies_without_warnings(installed_unit: Path) -> None:
    out = _verify(installed_unit)
    assert out.returncode == 0 and "heymusic.service" not in out.stderr, out.stderr


def test_verify_would_catch_a_broken_unit(installed_unit: Path) -> None:
    installed_unit.write_text(installed_unit.read_text().replace("Type=notify", "Type=notfy"))
    assert "heymusic.service" in _verify(installed_unit).stderr


def test_unit_has_the_required_settings() -> None:
    lines = {line.strip() for line in UNIT.read_text().splitlines()}
    for needed in (
        "Type=notify",
        "Restart=on-failure",
        "DynamicUser=yes",
        "SupplementaryGroups=audio",
        "StateDirectory=heymusic",
        "ConfigurationDirectory=heymusic",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "WorkingDirectory=/",
    ):
        assert needed in lines, needed
    assert any(line.startswith("WatchdogSec=") for line in lines)
    assert any("XDG_STATE_HOME=/var/lib" in line for line in lines)
