"""The transformers engine's KV cache: one row per sequence, real tokens right-aligned and
contiguous, padding on the left (engine/hf.py's docstring gives the layout and why).

A `DynamicCache` whose layers write in place into a buffer with spare columns (DynamicLayer's
``torch.cat`` would copy the whole cache on every step); ``keep`` drops finished rows and the
columns that are padding for every remaining row, ``merge`` stacks a newly prefilled batch under a
running one (continuous batching).
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

_GROW = 64  # columns added when a cache buffer runs out of room
_RESERVE = 128  # at most this many spare columns are allocated ahead


class _SlackLayer(DynamicLayer):
    """A DynamicLayer that writes new keys/values in place into a buffer with spare columns."""

    def __init__(self, reserve: int = _RESERVE):
        super().__init__()
        self.reserve = reserve
        self.k_buf: torch.Tensor | None = None
        self.v_buf: torch.Tensor | None = None
        self.used = 0

    def _set(self, k_buf: torch.Tensor, v_buf: torch.Tensor, used: int) -> None:
        self.k_buf, self.v_buf, self.used = k_buf, v_buf, used
        self.keys, self.values = k_buf[:, :, :used], v_buf[:, :, :used]
        self.is_initialized = True
        self.device = k_buf.device

    def update(self, key_states, value_states, *args, **kwargs):
        q = key_states.shape[-2]
        if self.k_buf is None:
            b, h, _, dk = key_states.shape
            cap = q + self.reserve
            self._set(key_states.new_empty((b, h, cap, dk)),
                      value_states.new_empty((b, h, cap, value_states.shape[-1])), 0)
        elif self.used + q > self.k_buf.shape[-2]:
            self._resize(torch.arange(self.k_buf.shape[0], device=self.k_buf.device),
                         self.used, self.used + q + _GROW)
        k_buf, v_buf = self.k_buf, self.v_buf
        k_buf[:, :, self.used:self.used + q] = key_states
        v_buf[:, :, self.used:self.used + q] = value_states
        self._set(k_buf, v_buf, self.used + q)
        return self.keys, self.values

    def _resize(self, rows: torch.Tensor, width: int, cap: int) -> None:
        """Keep `rows` and the last `width` used columns, in a new buffer of `cap` columns."""
        lo = self.used - width
        new = []
        for buf in (self.k_buf, self.v_buf):
            b = buf.new_empty((rows.numel(), buf.shape[1], cap, buf.shape[3]))
            b[:, :, :width] = buf[rows, :, lo:self.used]
            new.append(b)
        self._set(new[0], new[1], width)


class _KVCache(DynamicCache):
    """DynamicCache of `_SlackLayer`s; all layers share one width (no sliding-window eviction:
    sliding windows are applied through the mask instead)."""

    def __init__(self, n_layers: int, reserve: int):
        Cache.__init__(self, layers=[_SlackLayer(reserve) for _ in range(n_layers)])

    @property
    def width(self) -> int:
        return next((layer.used for layer in self.layers if layer.k_buf is not None), 0)

    def keep(self, rows: torch.Tensor, width: int, reserve: int) -> None:
        for layer in self.layers:
            if layer.k_buf is not None:
                layer._resize(rows, width, width + reserve)

    def merge(self, other: _KVCache, reserve: int) -> None:
        """Stack `other`'s rows under ours, right-aligned, left-padding the shorter side with zeros
        (finite values: a masked-out NaN would still poison attention through 0 * NaN)."""
        ta, tb = self.width, other.width
        width = max(ta, tb)
        for la, lb in zip(self.layers, other.layers):
            if la.k_buf is None:
                continue
            bufs = []
            for a, b in ((la.keys, lb.keys), (la.values, lb.values)):
                n_a = a.shape[0]
                buf = a.new_zeros((n_a + b.shape[0], a.shape[1], width + reserve, a.shape[3]))
                buf[:n_a, :, width - ta:width] = a
                buf[n_a:, :, width - tb:width] = b
                bufs.append(buf)
            la._set(bufs[0], bufs[1], width)
