"""Training throughput: `sharpset train` (LoRA) vs TRL SFTTrainer with its defaults, same data and LoRA.

Both train SmolLM2-135M-Instruct (embedded, fp32 weights, CPU) with the same LoRA settings
(r=16, alpha=32, dropout 0.05, all linear layers), batch 8, lr 2e-4, on the same 200 chat examples
(shipped questions with synthetic answers of varied length, 1-12 sentences, so padding matters).
tokens/s counts real (non-pad) tokens of the examples trained on, per wall second, after one
warm-up step each.

  trl       SFTTrainer(SFTConfig(defaults), peft_config=same LoRA) on the `messages` rows
  sharpset  sharpset.train.loop (the loop behind `sharpset train`): length-grouped micro-batches
            (little padding, no packing), bf16 autocast for the forward pass (weights and AdamW
            state fp32), exact grad accumulation
Then a bf16 check: the loss of the same 4 batches with fp32 and with bf16 autocast on the same
weights; the run states the relative difference against a tolerance of 2%.

usage: python bench/train.py [--steps 12] [--threads 2] [--no-bf16]
The last line is `train/trl = R`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

FILLER = ["This is a well-known fact.", "Many people learn it at school.", "It is easy to check.",
          "You can find it in most reference books.", "It has been true for a long time.",
          "Teachers often use it as an example.", "It is a common quiz question."]


def examples(n: int = 200, filler: list[str] = FILLER, sentences: tuple[int, int] = (0, 11)) -> list[dict]:
    """The shipped questions, each answered with its answer and 0-11 (``sentences``) filler sentences."""
    from sharpset.dataio import read_records
    from sharpset.stages.wrap import QUESTIONS

    rows = read_records(QUESTIONS, "sft", require_response=False).rows[:n]
    rng = random.Random(0)
    out = []
    for r in rows:
        extra = " ".join(rng.choice(filler) for _ in range(rng.randint(*sentences)))
        out.append({"id": r["id"], "messages": r["messages"] + [
            {"role": "assistant", "content": f"The answer is {r['answer']}. {extra}".strip()}]})
    return out


def lora():
    from peft import LoraConfig

    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")


def run_trl(rows, steps: int, tmp: Path) -> tuple[float, int, float]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from sharpset.models import load_model

    model, tok = load_model("smollm2-135m-instruct")
    args = SFTConfig(output_dir=str(tmp / "trl"), max_steps=steps + 1, report_to=[], use_cpu=True,
                     save_strategy="no", logging_steps=1, learning_rate=2e-4, per_device_train_batch_size=8)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([{"messages": r["messages"]} for r in rows]),
                         processing_class=tok, peft_config=lora())
    marks: list[tuple[float, int]] = []
    from transformers import TrainerCallback

    tokens = {"n": 0}
    orig = trainer.compute_loss

    def counting(model, inputs, *a, **kw):
        tokens["n"] += int(inputs["attention_mask"].sum()) if "attention_mask" in inputs else int(inputs["input_ids"].numel())
        return orig(model, inputs, *a, **kw)

    trainer.compute_loss = counting

    class Mark(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append((time.perf_counter(), tokens["n"]))

    trainer.add_callback(Mark())
    trainer.train()
    (t1, n1), (t2, n2) = marks[0], marks[-1]
    loss = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return (n2 - n1) / (t2 - t1), n2 - n1, loss[-1] if loss else float("nan")


def run_sharpset(rows, steps: int, bf16: bool, tmp: Path) -> tuple[float, int, float, object]:
    from sharpset.config import from_mapping
    from sharpset.models.profiles import profile_for
    from sharpset.train import TrainConfig, prepare_model
    from sharpset.train.loop import train_loop
    from sharpset.train.sft import sft_example

    cfg = from_mapping(TrainConfig, {"model": "smollm2-135m-instruct", "sft": "x", "objective": "sft", "lr": 2e-4,
                                     "batch_size": 8, "bf16": bf16, "save_every": 0, "lora_r": 16, "lora_alpha": 32,
                                     "epochs": 1, "warmup_ratio": 0.0})
    model, tok, profile, ref = prepare_model(cfg, lambda m: None)
    exs = [sft_example(r, profile, tok, cfg.max_length) for r in rows]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    train_loop(cfg, model, ref, exs, {"sft"}, tmp / "warm", pad, log=lambda m: None, stop_after=1)
    s = train_loop(cfg, model, ref, exs, {"sft"}, tmp / "ss", pad, log=lambda m: None, stop_after=steps)
    import json

    last = json.loads((tmp / "ss" / "losses.jsonl").read_text().splitlines()[-1])["loss"]
    return s["tokens_per_s_this_call"], s["tokens_this_call"], last, (model, tok, exs, pad)


@torch.no_grad()
def bf16_check(model, exs, pad) -> tuple[float, float]:
    from sharpset.train import losses
    from sharpset.train.loop import collate

    model.eval()
    out = []
    for dtype in (None, torch.bfloat16):
        tot = n = 0.0
        for i in range(0, 32, 8):
            ids, labels, mask = collate(exs[i:i + 8], pad)
            ctx = torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext()
            with ctx:
                logits = model(input_ids=ids, attention_mask=mask).logits
            tot += float(losses.token_nll(logits, labels, "sum"))
            n += losses.n_label_tokens(labels)
        out.append(tot / n)
    return out[0], out[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bf16", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    rows = examples()
    print(f"load average {os.getloadavg()[0]:.2f}; threads {args.threads}; {len(rows)} examples; "
          f"{args.steps} timed steps each (batch 8)")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t_rate, t_tok, t_loss = run_trl(rows, args.steps, tmp)
        print(f"trl            {t_rate:8.1f} tokens/s  ({t_tok} tokens, last loss {t_loss:.4f}; all tokens)")
        s_rate, s_tok, s_loss, (model, tok, exs, pad) = run_sharpset(rows, args.steps, False, tmp / "fp32")
        print(f"sharpset fp32  {s_rate:8.1f} tokens/s  ({s_tok} tokens, last loss {s_loss:.4f}; assistant tokens)"
              f"  {s_rate / t_rate:.2f}x")
        if not args.no_bf16:
            b_rate, b_tok, b_loss, _ = run_sharpset(rows, args.steps, True, tmp / "bf16")
            print(f"sharpset bf16  {b_rate:8.1f} tokens/s  ({b_tok} tokens, last loss {b_loss:.4f})  "
                  f"{b_rate / t_rate:.2f}x")
            f32, b16 = bf16_check(model, exs, pad)
            rel = abs(b16 - f32) / f32
            print(f"bf16 check: loss fp32 {f32:.4f}, bf16 autocast {b16:.4f}, relative difference {rel:.4f} "
                  f"({'within' if rel <= 0.02 else 'OUTSIDE'} the 2% tolerance"
                  f"{'' if rel <= 0.02 else ': the headline ratio is fp32, the default of sharpset train'})")
    print(f"train/trl = {s_rate / t_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
