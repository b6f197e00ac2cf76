"""The sentence embedder and the row text it embeds, shared by dedup, curate and restyle."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .records import conversation, instruction_of, response_of

FIELDS = ("instruction", "response", "conversation")


def text_of(row: dict, which: str) -> str:
    """The text compared or embedded: the instruction (:func:`sharpset.records.instruction_of`), the
    response (last assistant message) or all contents joined.

    A row without one (e.g. no assistant turn for ``response``) gives ``""``: never linked.
    """
    if which == "instruction":
        return instruction_of(row)
    if which == "response":
        return response_of(row)
    if which == "conversation":
        return "\n".join(m.get("content", "") for m in conversation(row))
    raise ValueError(f"field must be one of {', '.join(FIELDS)}, not {which!r}")


def default_embedder(name: str = "minilm-l6", batch_size: int = 64) -> Callable[[list[str]], np.ndarray]:
    from .models.registry import load_embedder

    model = load_embedder(name)

    def embed(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    return embed


def embed_rows(rows: Sequence[dict], embed_field: str, embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """L2-normalised float64 embeddings, one per row; each distinct text embedded once, in sorted order."""
    texts = [text_of(r, embed_field) for r in rows]
    uniq = sorted(set(texts))
    if not uniq:
        return np.zeros((0, 1))
    vecs = np.asarray(embed(uniq), dtype=np.float64)
    if vecs.ndim != 2 or vecs.shape[0] != len(uniq):
        raise ValueError(f"embedder returned shape {vecs.shape} for {len(uniq)} texts")
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = np.where(norms > 0, vecs / np.where(norms > 0, norms, 1.0), 0.0)
    pos = {t: i for i, t in enumerate(uniq)}
    return vecs[[pos[t] for t in texts]]
