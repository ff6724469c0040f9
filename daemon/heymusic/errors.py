"""Errors meant for the person at the keyboard: one line saying what is wrong and what to do."""


class UserError(Exception):
    """Shown as one line (no traceback); the CLI exits with status 2."""
