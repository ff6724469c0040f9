"""From a command's audio to what it asks: VAD and endpointing, ASR, the second listen, intents."""
