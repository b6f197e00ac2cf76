"""Does a tuned model end its turn? Checked as a user would: plain ``transformers``, no sharpset code.

    python experiments/ends_turn.py runs/x/merged [runs/y/merged ...] --train curated/x.jsonl --n 40

For each saved model folder (a ``sharpset train`` run's ``merged/`` or any HF folder):

- ``p_end``: on the training rows given with ``--train`` (``messages`` rows), the probability the
  model gives its end-of-turn token at the end of the assistant answer (mean and median over rows),
  and its rank there: was the end of turn learned where it was taught?
- ``ends``: the share of answers that stop before ``--max-new-tokens`` new tokens when the folder is
  used as a user would -- ``AutoModelForCausalLM`` + ``apply_chat_template(add_generation_prompt=True)``
  + ``generate()`` with the folder's own ``generation_config.json`` (greedy) -- on the first ``--n``
  prompts of the shipped format suite's test split (the eval's prompts), with a Wilson 95% interval.
  ``--eos-too`` also counts answers that stop only because the end-of-turn token was added by hand as
  a stop (what a user who knew the template would do).

Issue 20: the quickstart's tuned Gemma base had p_end ~ 0.0006 and ended 0 of its answers.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

FORMAT_DATA = Path(__file__).resolve().parents[1] / "src" / "sharpset" / "evaluate" / "data" / "format.jsonl"


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    # written out here so the check imports no sharpset code (sharpset.stats.wilson is the same formula)
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, c - h), min(1.0, c + h))


def end_probabilities(model, tok, rows: list[dict], end_id: int) -> list[tuple[float, int]]:
    """(p(end-of-turn), its rank) at the position right after each row's final assistant answer."""
    import torch

    out = []
    for r in rows:
        msgs = r["messages"]
        prompt = tok.apply_chat_template(msgs[:-1], add_generation_prompt=True, tokenize=False)
        full = prompt + msgs[-1]["content"].strip()
        ids = tok(full, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, -1].float()
        lp = torch.log_softmax(logits, -1)
        rank = int((logits > logits[end_id]).sum()) + 1
        out.append((float(lp[end_id].exp()), rank))
    return out


def generate_all(model, tok, prompts: list[str], max_new: int, extra_eos: list[int], batch: int = 8):
    import torch

    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    gc = model.generation_config
    eos = gc.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    res = []
    for i in range(0, len(prompts), batch):
        texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
                 for p in prompts[i:i + batch]]
        enc = tok(texts, add_special_tokens=False, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                 eos_token_id=eos + [e for e in extra_eos if e not in eos])
        for row in out[:, enc.input_ids.shape[1]:].tolist():
            new = row
            stop_at = next((j for j, t in enumerate(new) if t in eos or t in extra_eos), None)
            res.append({"ids": new if stop_at is None else new[:stop_at + 1], "stop": None if stop_at is None
                        else ("config" if new[stop_at] in eos else "added"),
                        "text": tok.decode(new if stop_at is None else new[:stop_at], skip_special_tokens=False)})
    return res, eos


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="saved model folders")
    ap.add_argument("--train", default="", help="the training rows (messages JSONL) for p_end")
    ap.add_argument("--n", type=int, default=40, help="format-suite test prompts to answer")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--end-token", default="", help="end-of-turn token (default: <end_of_turn> or <|im_end|>, "
                                                    "whichever the tokenizer has)")
    ap.add_argument("--eos-too", action="store_true", help="also stop at the end-of-turn token added by hand")
    ap.add_argument("--show", type=int, default=3)
    ap.add_argument("--out", default="", help="write the figures as JSON here")
    ap.add_argument("--answers", default="", help="write every answer here as JSONL (model, prompt, text, stop, "
                                                  "new_tokens): read the ones that do not end")
    a = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    prompts = []
    with FORMAT_DATA.open() as fh:
        for line in fh:
            r = json.loads(line)
            if r.get("split") == "test":
                prompts.append(r["messages"][-1]["content"])
    prompts = prompts[: a.n]
    train = [json.loads(l) for l in Path(a.train).read_text().splitlines() if l.strip()] if a.train else []
    report = {}
    for path in a.models:
        t0 = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        vocab = tok.get_vocab()
        end_tok = a.end_token or next(t for t in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>") if t in vocab)
        end_id = vocab[end_tok]
        fig: dict = {"end_token": end_tok}
        if train:
            pe = end_probabilities(model, tok, train, end_id)
            fig["p_end_mean"] = round(statistics.mean(p for p, _ in pe), 4)
            fig["p_end_median"] = round(statistics.median(p for p, _ in pe), 4)
            fig["rank_median"] = statistics.median(r for _, r in pe)
            fig["n_train_rows"] = len(pe)
        if not prompts:  # --n 0: the training rows' p_end only
            report[path] = fig
            print(f"== {path}\n{json.dumps(fig, indent=1)}")
            continue
        gens, eos = generate_all(model, tok, prompts, a.max_new_tokens, [end_id] if a.eos_too else [])
        k_cfg = sum(g["stop"] == "config" for g in gens)
        k_any = sum(g["stop"] is not None for g in gens)
        fig["generation_config_eos"] = eos
        fig["ends_with_saved_config"] = {"k": k_cfg, "n": len(gens), "rate": round(k_cfg / len(gens), 4),
                                         "ci95": [round(x, 4) for x in wilson(k_cfg, len(gens))]}
        if a.eos_too:
            fig["ends_with_end_token_added"] = {"k": k_any, "n": len(gens), "rate": round(k_any / len(gens), 4),
                                               "ci95": [round(x, 4) for x in wilson(k_any, len(gens))]}
        fig["new_tokens_median"] = statistics.median(len(g["ids"]) for g in gens)
        if a.answers:
            with open(a.answers, "a") as fh:
                for p, g in zip(prompts, gens):
                    fh.write(json.dumps({"model": path, "prompt": p, "text": g["text"], "stop": g["stop"],
                                         "new_tokens": len(g["ids"])}) + "\n")
        fig["seconds"] = round(time.perf_counter() - t0, 1)
        report[path] = fig
        print(f"== {path}\n{json.dumps(fig, indent=1)}")
        for p, g in list(zip(prompts, gens))[: a.show]:
            print(f"--- [prompt] {p[:160]}\n[answer, {len(g['ids'])} tokens, stop={g['stop']}] {g['text'][:600]}")
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
