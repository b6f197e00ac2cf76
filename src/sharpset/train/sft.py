"""Supervised fine-tuning on ``messages`` rows, loss on assistant tokens only.

Two backends over the same tokenisation (``sharpset.models.profiles.encode``: rendered once,
tokenised once, one BOS, labels on assistant content + end-of-turn):

- ``sharpset`` (default): the shared loop in :mod:`sharpset.train.loop` (length-grouped batches,
  bf16 autocast option, exact gradient accumulation, checkpoints with the same data order on resume),
  which is also what BCT/ACT/counterfactual use, so SFT can be combined with them;
- ``trl``: TRL's ``SFTTrainer`` on the same pre-tokenised rows (``input_ids`` + our assistant-only
  ``labels``, which TRL uses as is), for users who want the ecosystem trainer; resume goes through
  its own ``resume_from_checkpoint``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def sft_example(row: dict, profile, tok, max_length: int) -> dict | None:
    from ..models.profiles import encode

    # a row whose answer hit the writer's token limit (synth's `truncated`) is a prefix, not an answer:
    # its end-of-turn is not a target (the model must not learn to stop mid-sentence)
    enc = encode(profile, tok, row["messages"], train_on="assistant", end_last_turn=not row.get("truncated"))
    if len(enc.input_ids) > max_length or all(l == -100 for l in enc.labels):
        return None
    return {"kind": "sft", "id": row["id"], "ids": enc.input_ids, "labels": enc.labels,
            "n_label": sum(l != -100 for l in enc.labels[1:])}


def trl_trainer(cfg, model, tok, examples: list[dict], out: Path, peft_config=None, max_steps: int = -1,
                extra_args: dict[str, Any] | None = None):
    """TRL's SFTTrainer over pre-tokenised examples, not yet trained."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    # pre-tokenised rows with our own assistant-only labels: TRL uses a `labels` column as is
    # (its assistant_only_loss accepts conversational datasets only)
    ds = Dataset.from_list([{"input_ids": e["ids"], "labels": e["labels"]} for e in examples])
    args = dict(output_dir=str(out), per_device_train_batch_size=cfg.batch_size,
                gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr, num_train_epochs=cfg.epochs,
                max_length=cfg.max_length, seed=cfg.seed, bf16=cfg.bf16, use_cpu=True, report_to=[],
                logging_steps=1, save_steps=cfg.save_every or 10**9,
                max_steps=max_steps, dataset_kwargs={"skip_prepare_dataset": False})
    args.update(extra_args or {})
    return SFTTrainer(model=model, args=SFTConfig(**args), train_dataset=ds, processing_class=tok,
                      peft_config=peft_config)


def latest_checkpoint(out: Path) -> str | None:
    """The ``checkpoint-N`` folder with the highest step N (by number: 100 after 50), or None."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(out)) if Path(out).is_dir() else None


def train_trl(cfg, model, tok, examples: list[dict], out: Path, log: Callable[[str], None],
              peft_config=None, max_steps: int = -1, extra_args: dict[str, Any] | None = None):
    """Run TRL's SFTTrainer on pre-tokenised examples; returns the trainer (after .train()).

    A killed run resumes from its latest checkpoint, picked by step number (issue 10: sorted by
    name, ``checkpoint-50`` came after ``checkpoint-100``)."""
    trainer = trl_trainer(cfg, model, tok, examples, out, peft_config, max_steps, extra_args)
    resume = latest_checkpoint(out)
    if resume:
        log(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=resume)
    return trainer
