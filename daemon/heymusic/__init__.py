"""heymusic: an always-on, offline voice assistant for music."""

__version__ = "0.1.0"
