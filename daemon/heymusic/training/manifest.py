"""models/manifest.json: what each shipped model is (sha256), what it was made from, and the
command that made it. Training, evaluation and export each change only their own entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from heymusic.atomic import write_atomic


@contextmanager
def edited_manifest(models_dir: Path) -> Iterator[dict[str, Any]]:
    """The manifest as a dict to change in place; written back atomically when the block
    ends without an error (read-modify-write: other entries stay as they were)."""
    path = models_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    yield manifest
    write_atomic(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
