"""The wake word's data synthesis, training, evaluation and enrollment fitting."""
