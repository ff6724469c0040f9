"""Blend wake models: one ONNX graph per stage whose score is the mean of several trained
models' scores for that stage.

Why: two recipes' models miss different phrases. Today's recipe holds espeak-ng voices said
plainly; the one with Kokoro voices, rooms and near misses holds voices it never heard and
rooms, and loses a few plain phrases (docs/wake-word.md). Averaging their scores is what
`train-wake` already does with its own members (`train.mean_of`), one level up; the blended
files keep openWakeWord's I/O, so the daemon loads them as any other model. Verifiers that
read back different lengths (`train-wake --verifier-frames`) blend too: the blend reads the
longest, and each source its own last frames of it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from heymusic.atomic import atomic_path
from heymusic.errors import UserError
from heymusic.training.manifest import edited_manifest
from heymusic.training.wake.train import STAGE1_FILE, VERIFIER_FILE


def blend_onnx(models: list[Any], out: Path) -> None:
    """Write the mean of loaded ONNX `models` (`_load`; [1, frames, 96] inputs, the same
    output) as one model reading the most frames; a source reading fewer gets the last ones."""
    import onnx
    from onnx import compose, helper

    first = models[_widest(models)]
    x, frames = first.graph.input[0].name, _frames(first)
    nodes, weights, scores = [], [], []
    for i, model in enumerate(models):
        graph = compose.add_prefix(model, f"m{i}_").graph
        own_input, fed = graph.input[0].name, x
        if _frames(model) < frames:  # x[:, -n:, :]
            ends = [frames - _frames(model), frames, 1]
            weights += [
                helper.make_tensor(f"m{i}_slice_{k}", onnx.TensorProto.INT64, [1], [v])
                for k, v in zip(("starts", "ends", "axes"), ends, strict=True)
            ]
            fed = f"m{i}_last_frames"
            nodes.append(
                helper.make_node(
                    "Slice",
                    [x, f"m{i}_slice_starts", f"m{i}_slice_ends", f"m{i}_slice_axes"],
                    [fed],
                )
            )
        for node in graph.node:
            node.input[:] = [fed if name == own_input else name for name in node.input]
            nodes.append(node)
        weights.extend(graph.initializer)
        scores.append(graph.output[0].name)
    share = helper.make_tensor("share", onnx.TensorProto.FLOAT, [], [1.0 / len(models)])
    total = scores[0]
    for i, score in enumerate(scores[1:], 1):
        nodes.append(helper.make_node("Add", [total, score], [f"sum{i}"]))
        total = f"sum{i}"
    out_name = first.graph.output[0].name
    nodes.append(helper.make_node("Mul", [total, "share"], [out_name]))
    graph = helper.make_graph(
        nodes, "blend", [first.graph.input[0]], [first.graph.output[0]], [*weights, share]
    )
    blended = helper.make_model(graph, opset_imports=first.opset_import)
    blended.ir_version = first.ir_version
    onnx.checker.check_model(blended)
    with atomic_path(out) as tmp:
        onnx.save(blended, str(tmp))


def blend_dirs(sources: list[Path], out_dir: Path) -> list[str]:
    """Blend both stages of the models in `sources` (each dir as `train-wake --out` writes
    it, with its manifest) into `out_dir` (which may be one of them), and record in its
    manifest what each blend was made of; returns the files written.

    Raises:
        UserError: fewer than two sources, or a stage missing, unreadable or reading
            another input in one of them; nothing is written then.
    """
    if len(sources) < 2:
        raise UserError("give at least two model dirs to blend")
    loaded, made_of = {}, {}
    for name in (STAGE1_FILE, VERIFIER_FILE):
        paths = [src / name for src in sources]
        if missing := [str(p) for p in paths if not p.is_file()]:
            raise UserError(f"{', '.join(missing)} not found: each dir needs both stages")
        loaded[name] = [_load(path) for path in paths]
        if len({_input_kind(m) for m in loaded[name]}) != 1:
            raise UserError(f"{', '.join(map(str, paths))}: the models read different inputs")
        made_of[name] = [_entry(path) for path in paths]
    out_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join(["heymusic wake-blend", *map(str, sources), "--out", str(out_dir)])
    for name, models in loaded.items():
        blend_onnx(models, out_dir / name)
    with edited_manifest(out_dir) as manifest:
        for name, parts in made_of.items():
            manifest[name] = {
                "sha256": hashlib.sha256((out_dir / name).read_bytes()).hexdigest(),
                "command": command,
                "input": parts[_widest(loaded[name])].get("input", ""),  # the blend's
                "blend_of": parts,
            }
    return list(made_of)


def _frames(model: Any) -> int:
    """How many embeddings an ONNX wake stage reads: its input is [1, frames, 96]."""
    return int(model.graph.input[0].type.tensor_type.shape.dim[1].dim_value)


def _widest(models: list[Any]) -> int:
    """Index of the model reading the most frames (the first of them): the blend reads its input."""
    return max(range(len(models)), key=lambda k: _frames(models[k]))


def _input_kind(model: Any) -> tuple[int, tuple[int, ...]]:
    """What a stage reads, the frame count aside: element type and the other dimensions."""
    tensor = model.graph.input[0].type.tensor_type
    dims = [d.dim_value for d in tensor.shape.dim]
    return tensor.elem_type, tuple(dims[:1] + dims[2:])


def _load(path: Path) -> Any:
    """The ONNX model in `path`, checked.

    Raises:
        UserError: naming the file when it cannot be read as an ONNX model.
    """
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # OSError, or onnx's own parse and check errors
        raise UserError(f"{path} is not a readable ONNX model ({err}); retrain it") from err
    return model


def _entry(path: Path) -> dict[str, Any]:
    """What the manifest beside `path` says of it (its sha256 at least)."""
    manifest = path.parent / "manifest.json"
    entry = json.loads(manifest.read_text("utf-8")).get(path.name, {}) if manifest.exists() else {}
    entry.pop("blend_of", None)
    return {**entry, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
