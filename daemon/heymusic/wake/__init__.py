"""The wake word: detector, model lookup and loading, features, verifiers, and the Whisper check."""
