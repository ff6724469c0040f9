"""What a person asked for, kept out of the daemon's log unless `log_transcripts = true`:
the transcript, and the songs found for it (a title or an artist tells the request)."""

from __future__ import annotations

import logging

REDACTED = "(not logged)"


class Private(str):
    """A log argument that tells what was asked (a title, a reply naming a song). Printed
    as itself, except once `redact_private_logs` ran: then as REDACTED."""

    __slots__ = ()


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, Private) for a in record.args):
            record.args = tuple(REDACTED if isinstance(a, Private) else a for a in record.args)
        return True


def redact_private_logs() -> None:
    """From now on the root logger's handlers write every `Private` argument as REDACTED
    (the daemon's log, when log_transcripts is off; `simulate` shows everything)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _Redact) for f in handler.filters):
            handler.addFilter(_Redact())
