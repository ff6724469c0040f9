"""Reading Wyoming frames with limits. wyoming's own reader trusts the peer's lengths (a
header may announce gigabytes); here a frame over the limits, or one that is not Wyoming
at all, raises FrameError, and the connection is dropped with one line."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wyoming.event import Event

MAX_DATA_BYTES = 65_536
"""A frame's JSON data (a transcript, an info): a spoken request is ~100 characters."""


class FrameError(Exception):
    """The peer sent something that is not a Wyoming frame within our limits."""


async def read_frame(reader: asyncio.StreamReader, max_payload: int) -> Event | None:
    """The next event, or None when the peer closed the connection.

    Raises:
        FrameError: a header that is not JSON, or a data or payload over the limits.
    """
    try:
        line = await reader.readline()
    except ValueError as err:  # asyncio's line limit (64 kB)
        raise FrameError("a header line over 64 kB") from err
    if not line:
        return None
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, ValueError) as err:
        raise FrameError(f"not a Wyoming frame ({line[:40]!r}...)") from err
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise FrameError("a frame without a type")
    data = header.get("data") or {}
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", max_payload)
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict) or not isinstance(data, dict):
                raise FrameError("frame data that is not a JSON object")
            data = {**data, **extra}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None  # closed mid-frame: the same as closed
    except (UnicodeDecodeError, ValueError) as err:
        raise FrameError("frame data that is not JSON") from err
    if not isinstance(data, dict):
        raise FrameError("frame data that is not a JSON object")
    return Event(type=header["type"], data=data, payload=payload)


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key) or 0
    if not isinstance(value, int) or value < 0:
        raise FrameError(f"a bad {key} ({value!r})")
    if value > limit:
        raise FrameError(f"a frame with {key} {value} over the limit of {limit} bytes")
    return value
