"""Generation backends behind one interface (`Engine`), looked up by name.

The registry maps a name to "module:Class" and imports lazily, so a backend with a missing or
broken optional dependency never breaks the others (the lm-evaluation-harness pattern).

The backend contract (what a stage relies on when a config names ``engine: NAME``; a test or a
user may register another class under a new name):

- ``LOADS_WEIGHTS`` (class attribute, default True): True -- the class is built with ``model=`` a
  loaded transformers model (the transformers engine); False -- with ``model=`` a folder path or
  hub id it loads itself (vLLM), and the stage loads only the tokenizer;
- the constructor takes ``model``, ``tokenizer``, ``batch_size`` and the config's
  ``engine_options``: as ``options=`` when it has that parameter (vLLM: keyword arguments of
  ``vllm.LLM``), otherwise as keyword arguments (transformers: ``strategy``, ``linear_kernel``, ...);
- ``generate`` / ``generate_iter`` (`Engine`);
- ``SCORES`` (class attribute): which of :data:`SCORE_METHODS` it has as methods, with
  engine/scoring.py's signatures minus ``(model, tokenizer)`` (e.g. ``engine.answer_nll(sequences,
  labels)``). A stage that needs a score the engine lacks refuses the config, naming ``engine``.
- optional static hooks on ``engine_options``, asked before any model loads (sharpset.stage):
  ``check_options(options) -> [(field, problem)]``; ``check_model(model_name, options, log)``
  (raises a UserError, e.g. the proxy's tokenizer check); ``describe_options(options) -> dict``
  (the settings with defaults, for provenance); ``models_read(options) -> [model names]`` (more
  models the run reads, fingerprinted into its run key).
"""

from __future__ import annotations

import importlib
import inspect
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
    "proxy": "sharpset.engine.proxy:ProxyEngine",  # base + alpha * (expert - antiexpert), arXiv:2401.08565
}
# engine name -> the optional package (a key of sharpset.errors.EXTRAS) it needs
ENGINE_EXTRAS: dict[str, str] = {"vllm": "vllm"}

# forward-pass scores a backend may offer (engine/scoring.py's functions, as engine methods)
SCORE_METHODS = ("answer_nll", "answer_token_nll", "next_token_probs", "choice_logliks", "answer_token_ranks")


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


def build_engine(name: str, *, options: dict | None = None, **kwargs: Any) -> Engine:
    """Build the engine `name` with a config's ``engine_options`` passed the way its class takes
    them (``options=`` or keyword arguments; see the contract above). An option the class does not
    take is a TypeError naming it."""
    cls = engine_class(name)
    options = dict(options or {})
    if "options" in inspect.signature(cls).parameters:
        return cls(options=options, **kwargs)
    clash = sorted(set(options) & set(kwargs))
    if clash:
        raise TypeError(f"engine_options: {clash} are set by the stage itself")
    return cls(**kwargs, **options)


def scorer_for(model: Any, tokenizer: Any) -> Any:
    """What scores with `model`: an engine (anything with ``SCORES``) as it is; a transformers model
    wrapped so it has the same methods (engine/scoring.py underneath)."""
    if hasattr(model, "SCORES"):
        return model
    from sharpset.engine.hf import TransformersScoring

    return TransformersScoring(model, tokenizer)


__all__ = [
    "ENGINES",
    "ENGINE_EXTRAS",
    "Engine",
    "FinishReason",
    "GenerationRequest",
    "GenerationResult",
    "SCORE_METHODS",
    "SamplingParams",
    "build_engine",
    "engine_class",
    "get_engine",
    "scorer_for",
]
