"""A satellite's --mic-command: a quiet room in real time, and a recorded command each time
the test drops a "go" file (the file is taken away, so each go plays it once).

Run by the satellite's own Python (its venv has no numpy): standard library only.
Usage: satellite_mic.py COMMAND.wav GO_FILE
"""

import os
import random
import sys
import time
import wave

CHUNK = 1024  # samples, the satellite's default --mic-command-samples-per-chunk
RATE = 16000


def main() -> None:
    wav_path, go_path = sys.argv[1], sys.argv[2]
    with wave.open(wav_path) as wav:
        assert wav.getframerate() == RATE and wav.getsampwidth() == 2 and wav.getnchannels() == 1
        command = wav.readframes(wav.getnframes())
    rng = random.Random(len(go_path))
    quiet = b"".join(
        rng.randrange(-20, 20).to_bytes(2, "little", signed=True) for _ in range(CHUNK)
    )
    out = sys.stdout.buffer
    pending = b""
    start, sent = time.monotonic(), 0
    while True:
        if not pending and os.path.exists(go_path):
            os.unlink(go_path)
            pending = command
        block, pending = pending[: 2 * CHUNK], pending[2 * CHUNK :]
        block += quiet[len(block) :]
        out.write(block)
        out.flush()
        sent += CHUNK
        time.sleep(max(0.0, start + sent / RATE - time.monotonic()))


if __name__ == "__main__":
    main()
