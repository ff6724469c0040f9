"""Giving freed heap back to the OS after big one-off allocations (model loading, Whisper's
buffers): glibc keeps it otherwise, and an always-on daemon's resident size is what counts."""

from __future__ import annotations

import ctypes
import ctypes.util


def release_freed_memory() -> None:
    """Hand heap freed after a big one-off allocation back to the OS (glibc only)."""
    libc_name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(libc_name) if libc_name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
