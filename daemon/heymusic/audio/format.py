"""The audio every stage passes around, defined once: 16 kHz mono int16 in 80 ms chunks."""

SAMPLE_RATE = 16000
CHUNK_SAMPLES = 1280
"""80 ms: the frame openWakeWord is built for (one speech embedding per chunk), and four
20 ms webrtcvad frames."""
CHUNK_SECONDS = CHUNK_SAMPLES / SAMPLE_RATE
