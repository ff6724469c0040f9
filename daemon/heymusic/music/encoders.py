"""Query and song encoders at run time: onnxruntime + tokenizers + numpy, never torch.

The query encoder directory holds `model.onnx` (ids + mask -> L2-normalised
vector, pooling and projection inside the graph), `tokenizer.json` and
`encoder.json` (max length, kind). The song encoder is one ONNX MLP over the
feature vector that `song_features` builds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.errors import UserError

#: Kind of a query encoder: "two_tower" pairs with the song encoder; "zero_shot" embeds song text.
TWO_TOWER = "two_tower"
ZERO_SHOT = "zero_shot"


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    if not path.exists():
        raise UserError(f"model missing: {path}; reinstall heymusic or run export_onnx.py")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = False  # the arena keeps ~8 MB more for no measurable speed-up
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
        raise UserError(f"cannot load {path} ({err}); reinstall or re-export the model") from err


def query_files(model_dir: Path) -> list[Path]:
    """What QueryEncoder loads from `model_dir`: encoder.json, tokenizer.json and the graph
    encoder.json names (`doctor` checks them before the daemon needs them)."""
    meta_path = model_dir / "encoder.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    return [meta_path, model_dir / "tokenizer.json", _graph(model_dir, meta)]


def _graph(model_dir: Path, meta: dict[str, Any]) -> Path:
    return model_dir / meta.get("file", "model.onnx")


class QueryEncoder:
    """Text -> unit vector with the ONNX query tower."""

    def __init__(self, model_dir: Path, threads: int = 1) -> None:
        from tokenizers import Tokenizer

        meta_path = model_dir / "encoder.json"
        if not meta_path.exists():
            raise UserError(f"{meta_path} missing; reinstall heymusic or run export_onnx.py")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        self.kind: str = self.meta.get("kind", TWO_TOWER)
        self.max_length = int(self.meta.get("max_length", 32))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=int(self.meta.get("pad_id", 0)))
        self.graph = _graph(model_dir, self.meta)
        self.session = _session(self.graph, threads)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit vectors (n, dim) float32."""
        out = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer.encode_batch(list(texts[start : start + batch_size]))
            feeds = {
                "input_ids": np.array([e.ids for e in batch], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64),
            }
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            out.append(self.session.run(None, feeds)[0])
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalize(np.concatenate(out).astype(np.float32))


class SongEncoder:
    """Song feature vectors -> unit vectors with the ONNX song tower."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.session = _session(path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def encode(self, features: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        out = [
            self.session.run(None, {self.input_name: features[i : i + batch_size]})[0]
            for i in range(0, len(features), batch_size)
        ]
        return _normalize(np.concatenate(out).astype(np.float32))


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
