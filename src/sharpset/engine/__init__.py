"""Generation backends behind one interface (`Engine`), looked up by name.

The registry maps a name to "module:Class" and imports lazily, so a backend with a missing or
broken optional dependency never breaks the others (the lm-evaluation-harness pattern).
"""

from __future__ import annotations

import importlib
from typing import Any

from sharpset.engine.base import (
    Engine,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
)

ENGINES: dict[str, str] = {
    "transformers": "sharpset.engine.hf:TransformersEngine",
    "vllm": "sharpset.engine.vllm:VLLMEngine",  # optional: needs the vllm package (docs/scale.md)
}


def engine_class(name: str) -> type:
    """The class registered under `name` (imported on first use)."""
    try:
        target = ENGINES[name]
    except KeyError:
        raise ValueError(f"engine: unknown name {name!r}; known: {', '.join(sorted(ENGINES))}") from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def get_engine(name: str, **kwargs: Any) -> Engine:
    """Build the engine registered under `name`, e.g. get_engine("transformers", model=m, tokenizer=t)."""
    return engine_class(name)(**kwargs)


__all__ = [
    "ENGINES",
    "Engine",
    "FinishReason",
    "GenerationRequest",
    "GenerationResult",
    "SamplingParams",
    "engine_class",
    "get_engine",
]
