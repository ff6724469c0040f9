"""The stock wyoming-satellite from PyPI, in a virtual environment of its own (1.0.0 pins
wyoming 1.4.1, as a Raspberry Pi in another room would run it), started as a subprocess."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

SATELLITE_VERSION = "1.0.0"
MIC_SCRIPT = Path(__file__).with_name("satellite_mic.py")


def satellite_python(cache: Path) -> Path:
    """The satellite venv's python, built once per cache dir (pip from PyPI; with silero for
    its --vad mode)."""
    home = cache / f"wyoming-satellite-{SATELLITE_VERSION}"
    python = home / "bin" / "python"
    if not (home / ".complete").exists():
        venv.create(home, with_pip=True, clear=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                f"wyoming-satellite[silerovad]=={SATELLITE_VERSION}",
            ],
            check=True,
            timeout=600,
        )
        (home / ".complete").touch()
    return python


class StockSatellite:
    """One satellite: mic = a WAV played each time `go()` is called, speaker = a raw file."""

    def __init__(
        self, python: Path, name: str, port: int, wav: Path, workdir: Path, *extra: str
    ) -> None:
        self.name, self.port, self.extra = name, port, extra
        self.python = python
        self.wav = wav
        self.go_file = workdir / f"{name}.go"
        self.sound = workdir / f"{name}.snd.raw"
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        mic = f"{shlex.quote(str(self.python))} {MIC_SCRIPT} {self.wav} {self.go_file}"
        snd = f"sh -c 'cat >> {shlex.quote(str(self.sound))}'"
        args = [
            str(self.python), "-m", "wyoming_satellite",
            "--name", self.name, "--area", self.name,
            "--uri", f"tcp://127.0.0.1:{self.port}", "--no-zeroconf",
            "--mic-command", mic, "--snd-command", snd, *self.extra,
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                time.sleep(0.1)
        self.kill()
        raise AssertionError(f"satellite {self.name} did not start: {self.log.read_text()}")

    def go(self) -> None:
        self.go_file.touch()

    def sound_bytes(self) -> int:
        return self.sound.stat().st_size if self.sound.exists() else 0

    def loudest_since(self, offset: int) -> int:
        """The loudest sample its speaker was sent after byte `offset` (22.05 kHz s16le)."""
        import numpy as np

        data = self.sound.read_bytes()[offset:] if self.sound.exists() else b""
        samples = np.frombuffer(data[: len(data) // 2 * 2], "<i2")
        return int(np.abs(samples.astype(np.int32)).max()) if samples.size else 0

    def kill(self) -> None:
        """The satellite and its mic and speaker commands (its own process group)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


if (
    __name__ == "__main__"
):  # build the venv ahead of a test run: python -m tests.stock_satellite DIR
    print(satellite_python(Path(sys.argv[1])))
