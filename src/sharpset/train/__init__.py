"""``sharpset train``: LoRA (PEFT) or full fine-tuning with SFT, BCT, ACT and a counterfactual term.

Objectives (``--objective``, components joined by ``+``):
- ``sft``: assistant-only NLL on ``messages`` rows (``--sft``);
- ``bct``: NLL of the subject's own clean answer after the wrapped prompt (``--bct`` pairs,
  split=train only) -- arXiv:2510.27062, arXiv:2403.05518;
- ``act``: activation consistency on the shared-suffix prompt positions, weight ``act_weight``
  (default 1e-4, from reproductions of arXiv:2510.27062), alone or added to sft/bct;
- ``cf``: the ICR counterfactual log-prob gap (arXiv:2510.22462), weight ``counterfactual_weight``
  (default 0.1), on pairs that carry a counterfactual note.
All loss maths is in :mod:`sharpset.train.losses`; the loop (batching, exact grad accumulation,
checkpoints, resume with the same data order) in :mod:`sharpset.train.loop`. ``sft_backend: trl``
runs plain SFT through TRL's SFTTrainer instead.

Outputs in the run folder: ``losses.jsonl`` (one line per optimizer step), ``checkpoints/last``,
``adapter/`` (LoRA, safetensors), ``merged/`` (full model with the adapter merged, safetensors,
with the tokenizer) or ``model/`` for full fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import field
from ..errors import UserError

STAGE = "train"
VERSION = 5  # 5: the trained token rows' embedding gradient sums in a fixed order (train/token_rows.py: run-to-run identical trained models); 4: a truncated row's last end-of-turn is not a target (issue 20)
# 3: the chat control tokens' rows train beside LoRA, every end-of-turn token in generation_config (issue 20)
# 2: small-set defaults by measurement (min_steps 32, batch 4; lr kept at 2e-4); 1: 1 epoch, batch 8
PARTS = ("sft", "bct", "act", "cf")


@dataclass
class TrainConfig:
    model: str = field("smollm2-135m-instruct", "model to train: embedded name, local HF folder or hub id")
    sft: str = field("", "SFT data: messages rows (file, folder or run folder)")
    bct: str = field("", "invariance pairs from `sharpset wrap` (file, folder or run folder); split=train rows are used")
    objective: str = field("sft", "components joined by '+': sft, bct, act, cf (e.g. bct+act, act, sft+cf)")
    act_weight: float = field(1e-4, "weight of the ACT term (reproductions of arXiv:2510.27062 use 1e-4)")
    act_layer_norm: bool = field(False, "divide each layer's ACT term by its clean activations' mean squared norm")
    counterfactual_weight: float = field(0.1, "weight of the counterfactual gap (ICR code 0.1; 0.2 best in its ablation)")
    counterfactual_norm: str = field("l1", "counterfactual gap per token: l1 (|gap|) or l2 (gap^2)")
    lora_r: int = field(16, "LoRA rank")
    lora_alpha: int = field(32, "LoRA alpha")
    lora_dropout: float = field(0.05, "LoRA dropout")
    target_modules: list = field(["all-linear"], "LoRA target modules (all-linear, or names like q_proj,v_proj)")
    trainable_tokens: list = field(["auto"], "token rows that train beside a LoRA adapter (PEFT trainable_token_indices): "
                                             "chat = the chat profile's control tokens (end of turn, turn headers, eos); "
                                             "auto = chat when the start model does not already end its turns (its "
                                             "end-of-turn token ranked below 5th after a short answer: a pretrained base), "
                                             "else none; or token strings; [] = none. Under LoRA alone a base model never "
                                             "learned to end its turn (issue 20: gemma3-270m's end-of-turn at p ~ 0.0006)")
    trainable_tokens_lr: float = field(5e-3, "peak learning rate of those token rows (0 = lr). A base's control-token "
                                              "rows sit at the bottom of its vocabulary (gemma3-270m: <end_of_turn> ranked "
                                              "~260,000th of 262,144 at the end of an answer), far beyond what lr 2e-4 moves "
                                              "a row in a small set's budget (issue 20)")
    full_finetune: bool = field(False, "train every weight instead of a LoRA adapter")
    lr: float = field(2e-4, "peak learning rate (linear warm-up, linear decay); measured on small sets with "
                            "min_steps (issue 14): 2e-4 x 32 steps took hold at a smaller knowledge cost than 1e-3")
    warmup_ratio: float = field(0.03, "share of optimizer steps spent warming up")
    weight_decay: float = field(0.0, "AdamW weight decay")
    max_grad_norm: float = field(1.0, "gradient clipping (0 = off)")
    epochs: int = field(1, "passes over the data (ignored when max_steps > 0)")
    max_steps: int = field(0, "optimizer-step budget: > 0 trains exactly this many steps, cycling through the data "
                              "in fresh shuffles as needed, so sets of different sizes get the same budget (0 = epochs)")
    min_steps: int = field(32, "without max_steps: at least this many optimizer steps, the epochs of a small "
                               "set extended with fresh shuffles (0 = exactly `epochs`; 32 by measurement, issue 14)")
    batch_size: int = field(4, "rows per micro-batch (4: gemma3's 262k-vocabulary logits at 8 rows took 21 GB)")
    grad_accum: int = field(1, "micro-batches per optimizer step (exact: equals a batch that many times bigger)")
    max_length: int = field(1024, "longer rows are skipped (counted)")
    seed: int = field(0, "seed: data order, LoRA init, dropout -- keyed by (seed, 'train', ...)")
    bf16: bool = field(False, "bf16 autocast for forward passes (weights and optimizer stay fp32)")
    save_every: int = field(50, "checkpoint every N optimizer steps (and at the end); 0 = only at the end")
    save_merged: bool = field(True, "also save the merged model (LoRA merged into the weights)")
    sft_backend: str = field("sharpset", "plain SFT through the sharpset loop or TRL's SFTTrainer (trl)")
    threads: int = field(0, "torch CPU threads (0 = torch's default)")

    def parts(self) -> set[str]:
        return {p.strip() for p in self.objective.split("+") if p.strip()}

    def input_paths(self) -> list[str]:
        return [self.sft, self.bct]

    def key_inputs(self) -> dict[str, str]:
        """The model trained, by fingerprint (run.config_reads): a changed model folder retrains."""
        from ..run import models_read

        return models_read(self.model)

    def check(self) -> list[tuple[str, str]]:
        p = []
        parts = self.parts()
        bad = parts - set(PARTS)
        if bad or not parts:
            p.append(("objective", f"unknown component(s) {sorted(bad)}; use {'+'.join(PARTS)} joined by '+'"))
        if "sft" in parts and not self.sft:
            p.append(("sft", "objective includes sft: give --sft data"))
        if parts & {"bct", "act", "cf"} and not self.bct:
            p.append(("bct", "objective includes bct/act/cf: give --bct pairs"))
        for name in ("epochs", "batch_size", "grad_accum", "max_length", "lora_r"):
            if getattr(self, name) < 1:
                p.append((name, "must be >= 1"))
        for name in ("act_weight", "counterfactual_weight", "lr", "warmup_ratio", "lora_dropout", "save_every",
                     "max_steps", "min_steps", "trainable_tokens_lr"):
            if getattr(self, name) < 0:
                p.append((name, "must be >= 0"))
        if self.counterfactual_norm not in ("l1", "l2"):
            p.append(("counterfactual_norm", "must be l1 or l2"))
        if self.sft_backend not in ("sharpset", "trl"):
            p.append(("sft_backend", "must be sharpset or trl"))
        elif self.sft_backend == "trl" and parts != {"sft"}:
            p.append(("sft_backend", "trl runs plain sft only; use the sharpset backend for bct/act/cf"))
        return p


def build_examples(cfg: TrainConfig, profile, tok, log: Callable[[str], None]) -> tuple[list[dict], dict[str, int]]:
    """Tokenised examples for the objective's data; skipped rows counted."""
    from ..dataio import read_records
    from .bct import pair_example
    from .sft import sft_example

    parts, examples, counts = cfg.parts(), [], {"read": 0, "too_long": 0, "heldout_pairs": 0, "used": 0}
    if "sft" in parts:
        for r in read_records(cfg.sft, "sft").rows:
            counts["read"] += 1
            ex = sft_example(r, profile, tok, cfg.max_length)
            if ex is None:
                counts["too_long"] += 1
            else:
                examples.append(ex)
    if parts & {"bct", "act", "cf"}:
        for r in read_records(cfg.bct, "pair").rows:
            counts["read"] += 1
            if r["split"] != "train":
                counts["heldout_pairs"] += 1
                continue
            ex = pair_example(r, profile, tok, cfg.max_length)
            if ex is None:
                counts["too_long"] += 1
            else:
                examples.append(ex)
    counts["used"] = len(examples)
    if not examples:
        raise UserError("train: no usable training rows (all held out, too long, or empty input)")
    if "cf" in parts and not any("cf_ids" in e for e in examples):
        raise UserError("train: objective includes cf but no training pair has a counterfactual note "
                        "(wrap the partner family)")
    log(f"training rows: {counts}")
    return examples, counts


def prepare_model(cfg: TrainConfig, log: Callable[[str], None]):
    """(model ready to train, tokenizer, profile, frozen reference or None)."""
    import copy

    import torch

    from ..stage import load_subject

    subject = load_subject(cfg.model, log=log)
    model, tok, profile = subject.model, subject.tok, subject.profile
    model.config.use_cache = False
    reference = None
    if cfg.full_finetune:
        if "act" in cfg.parts():
            reference = copy.deepcopy(model).eval()
            for p in reference.parameters():
                p.requires_grad_(False)
        return model, tok, profile, reference
    from peft import LoraConfig, get_peft_model

    from ..run import derive_seed

    torch.manual_seed(derive_seed(cfg.seed, "train", "lora-init"))
    targets = cfg.target_modules[0] if cfg.target_modules == ["all-linear"] else list(cfg.target_modules)
    names = list(cfg.trainable_tokens)
    if "auto" in names:
        rank = end_of_turn_rank(model, tok, profile)
        ends = rank <= AUTO_RANK
        log(f"trainable_tokens auto: the start model ranks its end-of-turn token {rank} at the end of a "
            f"short exchange: {'it ends its turns; its token rows stay frozen' if ends else 'the chat token rows train'}")
        names = [n for n in names if n != "auto"] + ([] if ends else ["chat"])
    token_ids = trainable_token_ids(names, profile, tok)
    if token_ids and cfg.sft_backend == "trl":
        # TRL's SFTTrainer computes the loss from ``lm_head.weight`` directly (its fused LM head), so a
        # trained row on the (tied) head would be ignored there -- and PEFT's wrapper breaks it
        log(f"trainable_tokens: not applied under sft_backend trl (TRL's fused LM head reads lm_head.weight "
            f"directly); the chat token rows stay frozen: {[tok.convert_ids_to_tokens(i) for i in token_ids]}")
        token_ids = []
    if token_ids:
        log(f"token rows trained beside LoRA: {[tok.convert_ids_to_tokens(i) for i in token_ids]}")
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM",
                      trainable_token_indices=token_ids or None)
    return get_peft_model(model, lcfg), tok, profile, None


AUTO_RANK = 5  # `auto`: a start model that ranks its end-of-turn token within its top 5 already ends turns
PROBE_EXCHANGES = (("Say hello.", "Hello!"), ("What is 2 + 2?", "2 + 2 = 4."),
                   ("Name a colour.", "Blue is a colour."))


def end_of_turn_rank(model, tok, profile) -> int:
    """Median rank of the end-of-turn token right after the assistant's answer in a few short
    exchanges rendered in the model's chat layout (1 = the model's first choice). An aligned model
    ranks it 1; a pretrained base ranks its never-seen control token near the bottom of its
    vocabulary (gemma3-270m: ~260,000th of 262,144)."""
    import statistics

    import torch

    from ..models.profiles import encode, stop_token_ids

    eot = stop_token_ids(profile, tok)[0]
    ranks = []
    for q, a in PROBE_EXCHANGES:
        ids = encode(profile, tok, [{"role": "user", "content": q}, {"role": "assistant", "content": a}]).input_ids
        at = max(i for i, t in enumerate(ids) if t == eot)  # the answer's end-of-turn token
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids[:at]], device=model.device), logits_to_keep=1).logits[0, -1]
        ranks.append(int((logits > logits[eot]).sum()) + 1)
    return int(statistics.median(ranks))


def trainable_token_ids(names: list[str], profile, tok) -> list[int]:
    """Token ids whose embedding rows train beside LoRA (``trainable_tokens``), sorted.

    ``chat`` expands to the profile's control tokens: its end-of-turn marker and eos
    (:func:`sharpset.models.profiles.stop_token_ids`) and every special token of its turn headers
    (``<start_of_turn>``, ``<|im_start|>``). Why: a base model's rows of these tokens come from
    pretraining text where they hardly occur; LoRA on the linear layers must then bend every hidden
    state towards a frozen row to raise the end-of-turn logit, and within a small set's step budget it
    did not (issue 20). PEFT's TrainableTokens trains only these rows (ties the output head's row
    where the embedding is tied) and merges them into the saved model. Any other entry is a token
    string that must be one token of the vocabulary."""
    from ..models.profiles import stop_token_ids

    # special tokens only: gemma's tokenizer also lists plain text pieces ("\n") as added tokens, and
    # a newline's row is used everywhere -- it must not move with the turn markers
    special = set(tok.all_special_ids) | {i for i, t in (getattr(tok, "added_tokens_decoder", {}) or {}).items()
                                          if getattr(t, "special", False)}
    out: set[int] = set()
    for name in names:
        if name == "chat":
            out.update(stop_token_ids(profile, tok))
            headers = [profile.assistant_header]
            if profile.layout is not None:
                headers += [*profile.layout.user, *profile.layout.assistant]
            for h in headers:
                out.update(i for i in tok(h, add_special_tokens=False)["input_ids"] if i in special)
            continue
        ids = tok(name, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise UserError(f"trainable_tokens: {name!r} is {len(ids)} tokens of {cfg_model_name(tok)}, not one")
        out.add(ids[0])
    return sorted(out)


def cfg_model_name(tok) -> str:
    return getattr(tok, "name_or_path", "") or "this tokenizer"


EXPORTS = ("adapter", "merged", "model")  # the folders a train run exports into


def save_outputs(cfg: TrainConfig, model, tok, out: Path, profile=None) -> list[str]:
    """Export the trained model: ``adapter/`` + ``merged/`` (LoRA) or ``model/`` (full fine-tuning).

    Each folder is written whole into a temp folder beside it and renamed into place
    (:func:`sharpset.dataio.atomic_dir`), so a kill mid-export never leaves a ``merged/`` with a
    ``config.json`` and no weights (issue 21; ``eval`` also refuses a train run folder whose manifest
    is not complete). Temp folders a killed export left are removed first."""
    from ..dataio import atomic_dir, clean_dir_temps
    from ..models.profiles import chat_template_for

    if profile is not None and not getattr(tok, "chat_template", None):
        # a template-less base trained in a family's layout is saved WITH that template, so eval, TRL
        # and transformers render the tuned model exactly as it was trained (issue 12)
        template = chat_template_for(profile)
        if template is None:
            raise UserError(f"train: no canonical chat template for layout {profile.layout and profile.layout.name!r}; "
                            "give the base tokenizer a chat_template")
        tok.chat_template = template
    outputs = []
    for d in EXPORTS:
        clean_dir_temps(out / d)
    if profile is not None:
        set_turn_end(model, profile, tok)
    if cfg.full_finetune:
        with atomic_dir(out / "model") as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
        return _drop_other_exports(out, ["model/model.safetensors"])
    with atomic_dir(out / "adapter") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    outputs.append("adapter/adapter_model.safetensors")
    if cfg.save_merged:
        merged = model.merge_and_unload()
        if profile is not None:
            set_turn_end(merged, profile, tok)
        with atomic_dir(out / "merged") as tmp:
            merged.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
        outputs.append("merged/model.safetensors")
    return _drop_other_exports(out, outputs)


def _drop_other_exports(out: Path, outputs: list[str]) -> list[str]:
    """Remove an export folder this config does not write (left there by an earlier attempt)."""
    import shutil

    written = {o.split("/")[0] for o in outputs}
    for d in EXPORTS:
        if d not in written:
            shutil.rmtree(out / d, ignore_errors=True)
    return outputs


def set_turn_end(model, profile, tok) -> None:
    """Every token that ends an assistant turn (end-of-turn marker first, then eos) becomes the saved
    ``generation_config.json``'s ``eos_token_id``, so plain ``transformers`` ``generate()`` stops where
    sharpset's engine stops. A base's config lists only ``<eos>``: a tuned gemma3 base that emitted
    ``<end_of_turn>`` ran on to the token limit (issue 20)."""
    from ..models.profiles import stop_token_ids

    gc = getattr(model, "generation_config", None)
    if gc is None:
        return
    stops = list(stop_token_ids(profile, tok))
    old = gc.eos_token_id
    old = [] if old is None else [old] if isinstance(old, int) else list(old)
    gc.eos_token_id = stops + [i for i in old if i not in stops]
    if gc.pad_token_id is None and tok.pad_token_id is not None:
        gc.pad_token_id = tok.pad_token_id


def run(cfg: TrainConfig, run, log: Callable[[str], None] = print) -> dict[str, Any]:
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model, tok, profile, reference = prepare_model(cfg, log)
    run.record_model("start", {"name": cfg.model, "chat_template_hash": profile.template_hash,
                               "full_finetune": cfg.full_finetune})
    examples, counts = build_examples(cfg, profile, tok, log)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    if cfg.sft_backend == "trl":
        from .sft import train_trl

        from .loop import step_plan

        # the same number of optimizer steps as the sharpset loop would take (a step budget, or
        # min_steps extending a small set's epochs); TRL counts epochs otherwise
        budget = len(step_plan(cfg, examples)[1]) if (cfg.max_steps or cfg.min_steps) else -1
        trainer = train_trl(cfg, model, tok, examples, run.path / "trl", log, max_steps=budget)
        hist = [h for h in trainer.state.log_history if "loss" in h]
        from ..dataio import write_records

        write_records([{"step": h["step"] - 1, "loss": h["loss"]} for h in hist], run.path / "losses.jsonl")
        return _finish(cfg, trainer.model, tok, profile, counts, run, {})
    from .distributed import Single, current
    from .loop import train_loop

    dist = current()
    summary = train_loop(cfg, model, reference, examples, cfg.parts(), run.path, pad_id, log, dist=dist)
    if dist.kind == "fsdp":
        # the trained weights are shards on every rank: gather them (a collective) and export from
        # a plain copy of the model rebuilt on the main rank
        weights = dist.trainable_state(model)
        del model
        if dist.is_main:
            model = prepare_model(cfg, lambda m: None)[0]
            Single().load_state(model, None, weights, None)
    # under --launch accelerate only rank 0 writes the outputs
    out = _finish(cfg, model, tok, profile, counts, run, summary) if dist.is_main else summary
    # Every rank, after rank 0 has written: a torn-down process group, not gloo at interpreter exit.
    # Not in a `finally`: after an error the other ranks may sit in a collective, and a barrier here
    # would hang them until gloo's timeout instead of letting the launcher end them.
    dist.close()
    return out


def _finish(cfg: TrainConfig, model, tok, profile, counts: dict, run, summary: dict[str, Any]) -> dict[str, Any]:
    """Export the trained model and close the run folder (the main process)."""
    from .loop import curve_summary

    outputs = save_outputs(cfg, model, tok, run.path, profile) + ["losses.jsonl"]
    metrics = {**summary, **curve_summary(run.path / "losses.jsonl"), "rows_used": counts["used"],
               "rows_too_long": counts["too_long"], "heldout_pairs_skipped": counts["heldout_pairs"]}
    run.finish(counts={"read": counts["read"], "written": counts["used"],
                       "dropped": counts["too_long"] + counts["heldout_pairs"], "rejected": 0},
               outputs=outputs, metrics=metrics)
    return metrics
