"""Command-line handlers, one module per group of subcommands (heymusic.cli wires them)."""
