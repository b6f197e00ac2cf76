"""Models: embedded registry, loading with a safetensors cache, chat profiles."""

from .registry import EMBEDDED, cache_root, cache_state, load_embedder, load_model, resolve_path

__all__ = ["EMBEDDED", "cache_root", "cache_state", "load_embedder", "load_model", "resolve_path"]
