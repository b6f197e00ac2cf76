"""``sharpset restyle``: rewrite responses into a response-shape spec, keeping their content.

LIMA (arXiv:2305.11206) got its "one consistent response style" partly by hand-editing answers;
this stage does the editing with an aligned model prompted in the URIAL manner (Lin et al.,
arXiv:2312.01552: a fixed instruction plus a few worked examples in context, no tuning):

    system:    "Rewrite the ASSISTANT ANSWER so that it follows these style rules ... keep every
                fact ... " + spec.describe()
    user:      REWRITE_TEMPLATE(instruction_1, original_1)     } the spec's own ``examples``
    assistant: restyled_1                                        } (2-3, ``n_examples``)
    ...
    user:      REWRITE_TEMPLATE(row instruction, row response)
    assistant: <the rewrite, generated>

The prompt is rendered by the chat profile (one BOS, no appended generation header) and generated
through the configured engine (``--engine``, ``--cluster``; the transformers engine by default); each rewrite is logged with
``run.log_sample`` the moment it exists, so a killed run resumes where it stopped.

Content check (every drop counted by reason, and listed in ``restyle_dropped.jsonl``):
- ``empty``: nothing written; ``truncated``: the rewrite hit ``max_new_tokens`` (incomplete;
  ``drop_truncated: false`` leaves it to the content check);
  ``too_long``: the prompt exceeds ``max_prompt_tokens`` (not generated).
- ``content_words``: content-word recall ``|C(orig) & C(new)| / |C(orig)|`` below
  ``min_content_recall``, with C = :func:`sharpset.text.shape.content_words`. Recall, not Jaccard: a
  restyled answer legitimately *adds* words (an acknowledgement, a summary line), which Jaccard
  would punish; what must not happen is losing the original's words. Jaccard is recorded too.
- ``embedding``: cosine of the minilm-l6 embeddings of original and rewrite below ``min_cosine``.
Thresholds (set from a small measurement, not from a paper; recalibrate on your data with the
logged values). The six hand-written reference rewrites shipped as spec examples -- good
rewrites that drop chat filler ("Hope this helps!", "I think") and add detail -- score content
recall 0.28-0.75 (Jaccard 0.04-0.44: additions sink it, hence recall) and minilm cosine 0.38-0.93
to their originals, while unrelated answers among them score cosine -0.10 to +0.10 (measured with
:func:`content_check` and ``minilm-l6``; n = 6 pairs, so a rough guide). The defaults sit just
under the weakest good rewrite: ``min_content_recall`` 0.25 (a rewrite keeping under a quarter of
the original's content words has lost content, whatever it added) and ``min_cosine`` 0.35 (well
above unrelated text, so a rewrite that drifted to another topic goes). ``min_cosine: null`` skips
the embedding check.

Report (``restyle_report.json``, printed): spec conformance before and after -- over the kept rows
(same rows, before vs after) and over all rows (a dropped row counts with its original response) --
with per-criterion pass rates and bootstrap 95% CIs, and the drop counts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..config import field
from ..errors import UserError
from ..records import instruction_of, response_of
from ..run import RunDir, derive_seed
from ..stage import BackendFields

STAGE = "restyle"
VERSION = 1
DROP_REASONS = ("too_long", "empty", "truncated", "content_words", "embedding")

SYSTEM = ("You rewrite answers written by an AI assistant. Rewrite the ASSISTANT ANSWER so that it follows "
          "these style rules:\n{rules}\nKeep every fact, name, number, step and piece of code of the original; "
          "do not add claims it does not make. Reply with the rewritten answer only.")
REWRITE_TEMPLATE = "QUESTION:\n{instruction}\n\nASSISTANT ANSWER:\n{response}\n\nRewrite the ASSISTANT ANSWER."


@dataclass
class RestyleConfig(BackendFields):
    input: str = field("", "input data: SFT rows (messages) -- a file, folder or run folder")
    spec: str = field("lima-long", "response-shape spec to rewrite into (shipped name or .yaml with examples)")
    model: str = field("smollm2-135m-instruct", "aligned chat model that rewrites: embedded name, local HF folder or hub id")
    n: int = field(0, "rewrite only the first n rows (0: all)")
    n_examples: int = field(3, "in-context examples taken from the spec (URIAL: a few)")
    max_new_tokens: int = field(768, "max tokens of a rewrite (a rewrite that hits it is dropped as truncated)")
    drop_truncated: bool = field(True, "drop a rewrite that hit max_new_tokens (incomplete); false: judge it by "
                                       "the content check like the rest")
    max_prompt_tokens: int = field(6144, "rows whose rewrite prompt is longer (or leaves no room for max_new_tokens "
                                         "in the model's context) are dropped as too_long")
    temperature: float = field(0.0, "sampling temperature (0 = greedy)")
    top_p: float = field(1.0, "top-p")
    seed: int = field(0, "base seed; row seeds derive from (seed, 'restyle', row id)")
    min_content_recall: float = field(0.25, "drop a rewrite keeping less than this share of the original's content words")
    min_cosine: float | None = field(0.35, "drop a rewrite whose embedding cosine to the original is below this (null: skip)")
    embedder: str = field("minilm-l6", "sentence embedder for the cosine check")
    batch_size: int = field(8, "engine batch size")
    on_error: str = field("raise", "bad input rows: raise (exit 2) or skip (to rejected.jsonl)")

    def key_inputs(self) -> dict[str, str]:
        """The rewriting model and embedder by fingerprint, the spec file by content (run.config_reads)."""
        from ..run import models_read, spec_key

        return {**models_read(self.model, self.embedder if self.min_cosine is not None else None),
                "file:spec": spec_key(self.spec)}

    def check(self) -> list[tuple[str, str]]:
        p = []
        if not self.input:
            p.append(("input", "required"))
        if self.n < 0:
            p.append(("n", "must be >= 0"))
        if self.n_examples < 0:
            p.append(("n_examples", "must be >= 0"))
        if self.max_new_tokens < 1:
            p.append(("max_new_tokens", "must be >= 1"))
        if self.temperature < 0:
            p.append(("temperature", "must be >= 0"))
        if not 0 < self.top_p <= 1:
            p.append(("top_p", "must be in (0, 1]"))
        if not 0 <= self.min_content_recall <= 1:
            p.append(("min_content_recall", "must be in [0, 1]"))
        if self.min_cosine is not None and not -1 <= self.min_cosine <= 1:
            p.append(("min_cosine", "must be in [-1, 1] or null"))
        if self.on_error not in ("raise", "skip"):
            p.append(("on_error", "must be raise or skip"))
        return p


def build_messages(spec, instruction: str, response: str, n_examples: int, system_role: bool = True) -> list[dict]:
    """The URIAL-style rewrite conversation (ends with the user turn to answer)."""
    system = SYSTEM.format(rules=spec.describe())
    msgs = [{"role": "system", "content": system}] if system_role else []
    for ex in spec.examples[:n_examples]:
        msgs.append({"role": "user", "content": REWRITE_TEMPLATE.format(instruction=ex["instruction"],
                                                                       response=ex["original"])})
        msgs.append({"role": "assistant", "content": ex["restyled"]})
    msgs.append({"role": "user", "content": REWRITE_TEMPLATE.format(instruction=instruction, response=response)})
    if not system_role:  # a template without a system role: the rules lead the first user turn
        msgs[0] = {"role": "user", "content": system + "\n\n" + msgs[0]["content"]}
    return msgs


def content_check(original: str, rewrite: str) -> dict[str, float]:
    """Content-word recall (share of the original's content words kept) and Jaccard."""
    from ..text.shape import content_words, jaccard

    a, b = content_words(original), content_words(rewrite)
    recall = len(a & b) / len(a) if a else 1.0
    return {"content_recall": round(recall, 6), "content_jaccard": round(jaccard(a, b), 6)}


def decide(sample: dict, cfg: RestyleConfig) -> str | None:
    """The drop reason for one logged sample (after its checks), or None to keep it."""
    if sample.get("skipped"):
        return sample["skipped"]
    if not sample["text"].strip():
        return "empty"
    if sample["finish_reason"] == "length" and cfg.drop_truncated:
        return "truncated"
    if sample["content_recall"] < cfg.min_content_recall:
        return "content_words"
    if cfg.min_cosine is not None and sample.get("cosine") is not None and sample["cosine"] < cfg.min_cosine:
        return "embedding"
    return None


def _summary(rows_conf: list[dict], criteria: list[str], seed: int) -> dict[str, Any]:
    from ..stats import mean_ci

    out = {"conformance": mean_ci([c["conformance"] for c in rows_conf], seed)}
    out["pass_rates"] = {c: (round(sum(r[f"conf_{c}"] for r in rows_conf) / len(rows_conf), 4) if rows_conf else None)
                         for c in criteria}
    return out


def run(cfg: RestyleConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The stage (module docstring): rewrite every row, check each rewrite's content, keep or drop
    it, and report conformance before and after."""
    from ..dataio import write_json
    from ..records import Counts
    from ..stage import load_subject

    spec = _load_spec(cfg)
    res, rows, not_taken = _read_rows(cfg)
    subject = load_subject(cfg.model, log=log, run=run, role="rewriter", backend=cfg)
    done = _rewrite(cfg, spec, rows, subject, run, log)
    cos = _cosines(cfg, rows, done, run)
    criteria = spec.criteria()
    kept, dropped, reasons, conf = _decide_rows(cfg, spec, rows, done, cos)
    outputs = _write_rows(run, res, kept, dropped)
    n_dropped = sum(reasons.values())
    counts = Counts(read=res.n_read, written=len(kept), dropped=n_dropped + not_taken,
                    rejected=len(res.rejected)).check().as_dict()
    report = _report(cfg, spec.name, criteria, len(rows), not_taken, len(kept), reasons, conf, counts)
    write_json(run.path / "restyle_report.json", report)
    outputs.append("restyle_report.json")
    _log_report(log, report)
    run.finish(counts=counts, outputs=outputs, metrics={
        "kept": len(kept), "dropped": n_dropped, "drop_reasons": reasons,
        "conformance_before_all": report["all_rows"]["before"]["conformance"]["mean"],
        "conformance_after_all": report["all_rows"]["after"]["conformance"]["mean"]})
    return {"kept": len(kept), "dropped": n_dropped, "drop_reasons": reasons,
            "conformance_before": report["all_rows"]["before"]["conformance"]["mean"],
            "conformance_after": report["all_rows"]["after"]["conformance"]["mean"]}


def _load_spec(cfg: RestyleConfig):
    """The spec to rewrite into; a UserError when the prompt is to show examples and it has none."""
    from ..text.spec import load_spec

    spec = load_spec(cfg.spec)
    if cfg.n_examples and not spec.examples:
        raise UserError(f"{spec.source}: examples: spec '{spec.name}' has no examples to show the model "
                        "(add some, or pass --n-examples 0)")
    return spec


def _read_rows(cfg: RestyleConfig) -> tuple[Any, list[dict], int]:
    """(read result, the first n rows with their ids, how many rows lie beyond n)."""
    from ..dataio import read_records
    from ..records import with_id

    res = read_records(cfg.input, "sft", on_error=cfg.on_error)
    rows = [with_id(r, "sft") for r in (res.rows[: cfg.n] if cfg.n else res.rows)]
    return res, rows, len(res.rows) - len(rows)


def _rewrite(cfg: RestyleConfig, spec, rows: list[dict], subject: Any, run: RunDir, log: Callable[[str], None]
             ) -> dict[str, dict]:
    """Rewrite every row not logged yet, logging each rewrite with its content check the moment it
    exists (a prompt too long for the model is logged as skipped); returns the sample log."""
    engine = subject.engine(cfg.batch_size)
    done = run.done_samples()
    if done:
        log(f"resuming: {len(done)} of {len(rows)} rewrites already logged")
    reqs, keys = _rewrite_requests(cfg, spec, rows, subject, run, done)
    t0 = time.perf_counter()
    for j, out in engine.generate_iter(reqs):
        r = keys[j]
        payload = {"text": out.text.strip(), "finish_reason": out.finish_reason, "truncated": out.truncated,
                   "n_prompt_tokens": out.n_prompt_tokens, "n_new_tokens": out.n_new_tokens,
                   "seed": reqs[j].params.seed, **content_check(response_of(r), out.text)}
        run.log_sample(r["id"], payload)
    if reqs:
        dt = time.perf_counter() - t0
        log(f"rewrote {len(reqs)} rows in {dt:.1f} s ({60 * len(reqs) / max(dt, 1e-9):.0f} rows/min)")
    return run.done_samples()


def _rewrite_requests(cfg: RestyleConfig, spec, rows: list[dict], subject: Any, run: RunDir, done: dict
                      ) -> tuple[list, list[dict]]:
    """(requests, their rows) for the rows not in ``done``. A prompt longer than max_prompt_tokens, or
    leaving the model's context no room for max_new_tokens, is logged as skipped (too_long) instead."""
    from ..engine import GenerationRequest, SamplingParams
    from ..models.profiles import encode_prompt
    from ..stage import prompt_room

    tok, profile = subject.tok, subject.profile
    system_role = profile.layout is None or profile.layout.system_mode != "none"
    stops = subject.stop_ids()
    # the prompt must leave room for the rewrite inside the model's context
    limit = cfg.max_prompt_tokens
    room = prompt_room(subject.config, cfg.max_new_tokens)
    if room is not None:
        limit = min(limit, room)
    reqs, keys = [], []
    for r in rows:
        if r["id"] in done:
            continue
        msgs = build_messages(spec, instruction_of(r), response_of(r), cfg.n_examples, system_role)
        ids = encode_prompt(profile, tok, msgs)
        seed = derive_seed(cfg.seed, STAGE, r["id"])
        if len(ids) > limit:
            run.log_sample(r["id"], {"skipped": "too_long", "n_prompt_tokens": len(ids), "seed": seed})
            continue
        params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                seed=seed, stop_token_ids=stops, stop_strings=tuple(profile.stop_strings))
        reqs.append(GenerationRequest(ids, params, key=r["id"]))
        keys.append(r)
    return reqs, keys


def _cosines(cfg: RestyleConfig, rows: list[dict], done: dict, run: RunDir) -> dict[str, float]:
    """Embedding cosine of original and rewrite per row with a non-empty rewrite (none when
    min_cosine is null); computed from the logged texts, so a resumed run gets the same values."""
    cos: dict[str, float] = {}
    if cfg.min_cosine is None:
        return cos
    from ..embed import default_embedder

    pairs = [(r["id"], response_of(r), done[r["id"]]["text"]) for r in rows
             if not done[r["id"]].get("skipped") and done[r["id"]]["text"].strip()]
    if pairs:
        embed = default_embedder(cfg.embedder)
        run.record_model("embedder", {"name": cfg.embedder})
        va = embed([p[1] for p in pairs])
        vb = embed([p[2] for p in pairs])
        for (rid, _, _), a, b in zip(pairs, va, vb):
            cos[rid] = round(float((a * b).sum()), 6)
    return cos


def _decide_rows(cfg: RestyleConfig, spec, rows: list[dict], done: dict, cos: dict[str, float]
                 ) -> tuple[list[dict], list[dict], dict[str, int], dict[str, list[dict]]]:
    """(restyled rows, dropped entries, drops by reason, conformance lists). The conformance lists:
    ``before_all`` / ``after_all`` over every row (a dropped row counts with its original response
    on both sides), ``before_kept`` / ``after_kept`` over the kept rows only."""
    from ..text.spec import conformance

    kept, dropped = [], []
    conf: dict[str, list[dict]] = {"before_all": [], "after_all": [], "before_kept": [], "after_kept": []}
    reasons = {r: 0 for r in DROP_REASONS}
    for r in rows:
        s = {**done[r["id"]], **({"cosine": cos[r["id"]]} if r["id"] in cos else {})}
        instr, orig = instruction_of(r), response_of(r)
        c0 = conformance(spec, orig, prompt=instr)
        conf["before_all"].append(c0)
        reason = decide(s, cfg)
        if reason:
            reasons[reason] += 1
            conf["after_all"].append(c0)
            dropped.append({"id": r["id"], "reason": reason, "rewrite": s.get("text"),
                            **{k: s[k] for k in ("content_recall", "content_jaccard", "cosine", "finish_reason")
                               if k in s}})
            continue
        c1 = conformance(spec, s["text"], prompt=instr)
        conf["before_kept"].append(c0)
        conf["after_kept"].append(c1)
        conf["after_all"].append(c1)
        kept.append(_restyled_row(cfg, spec.name, r, s, c1))
    return kept, dropped, reasons, conf


def _restyled_row(cfg: RestyleConfig, spec_name: str, r: dict, s: dict, c1: dict) -> dict:
    """Row ``r`` with its last assistant turn replaced by the rewrite in sample ``s``; its new
    conformance ``c1``, the content check and the provenance (the original response kept there)."""
    from ..records import content_id

    msgs = [dict(m) for m in r["messages"]]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    msgs[last]["content"] = s["text"]
    new = {"id": content_id({"messages": msgs}, "sft"), "messages": msgs}
    # tag columns described the old response: keep only those that are not about it
    for k, v in r.items():
        if k not in ("id", "messages", "provenance") and not k.startswith(("shape_", "quality", "ifd",
                                                                          "nll_", "conformance", "conf_")):
            new[k] = v
    new.update({**c1, "restyle_spec": spec_name, "content_recall": s["content_recall"],
                "content_jaccard": s["content_jaccard"], "restyle_cosine": s.get("cosine")})
    new["provenance"] = {"stage": STAGE, "source_id": r["id"], "spec": spec_name, "model": cfg.model,
                         **cfg.backend_info(cluster=False),
                         "original_response": response_of(r), "seed": s["seed"], "n_examples": cfg.n_examples,
                         "sampling": {"temperature": cfg.temperature, "top_p": cfg.top_p,
                                      "max_new_tokens": cfg.max_new_tokens},
                         "previous": r.get("provenance")}
    return new


def _write_rows(run: RunDir, res: Any, kept: list[dict], dropped: list[dict]) -> list[str]:
    """restyled.jsonl, restyle_dropped.jsonl and (bad input skipped) rejected.jsonl; returns their names."""
    from ..dataio import write_records, write_rejected

    write_records(kept, run.path / "restyled.jsonl")
    write_records(dropped, run.path / "restyle_dropped.jsonl")
    outputs = ["restyled.jsonl", "restyle_dropped.jsonl"]
    if res.rejected:
        write_rejected(res.rejected, run.path / "rejected.jsonl")
        outputs.append("rejected.jsonl")
    return outputs


def _report(cfg: RestyleConfig, spec_name: str, criteria: list[str], n_rows: int, not_taken: int, n_kept: int,
            reasons: dict[str, int], conf: dict[str, list[dict]], counts: dict) -> dict[str, Any]:
    """restyle_report.json: conformance before and after over the kept rows and over all rows (mean
    with a bootstrap 95% CI, per-criterion pass rates), the drops and the thresholds."""
    return {
        "spec": spec_name, "criteria": criteria, "model": cfg.model, "rows": n_rows,
        "not_taken_beyond_n": not_taken, "kept": n_kept, "dropped": sum(reasons.values()), "drop_reasons": reasons,
        "thresholds": {"min_content_recall": cfg.min_content_recall, "min_cosine": cfg.min_cosine},
        "kept_rows": {"before": _summary(conf["before_kept"], criteria, cfg.seed),
                      "after": _summary(conf["after_kept"], criteria, cfg.seed)},
        "all_rows": {"before": _summary(conf["before_all"], criteria, cfg.seed),
                     "after": _summary(conf["after_all"], criteria, cfg.seed),
                     "note": "a dropped row counts with its original response"},
        "counts": counts,
    }


def _fmt_conformance(s: dict[str, Any]) -> str:
    return "-" if s["conformance"]["mean"] is None else f"{s['conformance']['mean']:.3f} {s['conformance']['ci95']}"


def _log_report(log: Callable[[str], None], report: dict[str, Any]) -> None:
    """The report as log lines: kept and dropped by reason, mean conformance before -> after, and
    each criterion's pass rate over all rows."""
    reasons = report["drop_reasons"]
    log(f"restyle into {report['spec']}: {report['rows']} rows, kept {report['kept']}, dropped {report['dropped']} "
        f"({', '.join(f'{k} {v}' for k, v in reasons.items() if v) or 'none'})")
    log(f"  mean conformance, kept rows: before {_fmt_conformance(report['kept_rows']['before'])} -> "
        f"after {_fmt_conformance(report['kept_rows']['after'])}")
    log(f"  mean conformance, all rows:  before {_fmt_conformance(report['all_rows']['before'])} -> "
        f"after {_fmt_conformance(report['all_rows']['after'])}")
    for c in report["criteria"]:
        b, a = report["all_rows"]["before"]["pass_rates"][c], report["all_rows"]["after"]["pass_rates"][c]
        log(f"    {c:14s} pass rate {b} -> {a}")


def show(path: str, n: int = 5) -> str:
    from pathlib import Path

    from ..dataio import read_records

    p = Path(path)
    src = p / "restyled.jsonl" if (p / "restyled.jsonl").exists() else p
    out = []
    for r in read_records(src, "sft").rows[:n]:
        prov = r.get("provenance") or {}
        out.append(f"--- {r['id']} (from {prov.get('source_id')}, conformance {r.get('conformance')}, "
                   f"recall {r.get('content_recall')}, cosine {r.get('restyle_cosine')})")
        out.append(f"[before] {str(prov.get('original_response', ''))[:400]}")
        out.append(f"[after]  {response_of(r)[:400]}")
    dropped = p / "restyle_dropped.jsonl"
    if dropped.exists():
        lines = dropped.read_text(encoding="utf-8").splitlines()[:n]
        for line in lines:
            d = json.loads(line)
            out.append(f"--- dropped {d['id']}: {d['reason']} (recall {d.get('content_recall')}, "
                       f"cosine {d.get('cosine')})")
    return "\n".join(out)
