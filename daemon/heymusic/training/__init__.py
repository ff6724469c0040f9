"""Offline work the daemon never imports: wake-word and retrieval data, training and evaluation."""
