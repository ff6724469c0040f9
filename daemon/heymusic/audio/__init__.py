"""Audio in and out: the sample format, sources (mic, file, stdin), the echo canceller and the speaker sink."""
