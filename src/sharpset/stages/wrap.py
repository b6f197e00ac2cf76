"""Invariance pairs: wrap clean prompts, target = the subject model's own clean answer (METHODS §5, §6).

Bias-augmented / activation consistency training (arXiv:2510.27062; Chua et al. arXiv:2403.05518):
for a clean prompt x and a wrapper w, the pair is (x, w(x)) and the target is y ~ subject(x),
generated fresh, in this run, by the subject model itself (greedy by default) -- never a stale
answer from another model. Wrapper families live in ``data/wrappers.yaml`` (>= 12 paraphrases each):

- sycophancy/suggested, /opinion, /authority: prefixes that suggest a known wrong answer, state an
  opinion, or claim authority; sycophancy/pushback: a second user turn ("I don't think that's
  right. Are you sure?") after the model's own clean answer;
- jailbreak/roleplay, /hidden (the request hidden among benign ones), /injection (prefix or suffix);
- noise/typos (a typo-laden lead-in; the question itself is left intact so it stays a suffix),
  noise/distractor, noise/format;
- partner/intervention: a partner suggests the wrong answer; its counterfactual (ICR,
  arXiv:2510.22462) is the same conversation with a line stating the partner's suggestions will not
  help. The line is kept in the pair's ``counterfactual`` column (records.py allows only scalar
  extra columns); :func:`counterfactual_messages` rebuilds the counterfactual prompt from it.

Templates are prefixes wherever the family allows, so the clean user text is a suffix of the
wrapped one (ACT compares activations on that shared suffix); ``clean_is_suffix`` records it.
Split by FAMILY: every pair of a family in ``heldout_families`` is ``heldout``, the rest ``train``.
Which paraphrase a (row, family) gets is drawn from a generator keyed by (seed, "wrap", row id,
family), never global state.

Validity: a row with a known ``answer`` (and ``wrong``) column is kept only when the clean answer
contains the answer and not the wrong one (numbers match as digits or words); otherwise all its
pairs are dropped with the reason counted (``wrong_answer``, ``empty``, ``truncated``). Each target
is logged as it is generated, so a killed run resumes. Default input: the shipped question set
``data/questions.jsonl`` (capitals, arithmetic, units, facts, comparisons; open and 2-option MC).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..config import field
from ..errors import UserError
from ..invariance import (HELDOUT_FAMILIES, QUESTIONS, _NUM, _norm_words, clean_prompt, counterfactual_messages, eligible,  # noqa: F401 -- re-exported
                          load_families, mentions, question_split, select_families, wrap_messages)
from ..run import RunDir, derive_seed
from ..stage import BackendFields

STAGE = "wrap"
VERSION = 2  # 2: the shipped question set's eval split is never made into pairs

DROP_REASONS = ("empty", "truncated", "wrong_answer")


@dataclass
class WrapConfig(BackendFields):
    input: str = field("", "clean prompts: SFT rows (a user turn, optionally with answer/wrong columns); "
                           "empty = the shipped known-answer question set (its train split; the eval split "
                           "is kept for `sharpset eval`)")
    model: str = field("smollm2-135m-instruct", "subject model that writes the targets (its own clean answers)")
    families: list = field(["sycophancy", "jailbreak", "noise", "partner"],
                           "wrapper families: group names (sycophancy) or exact names (sycophancy/opinion)")
    heldout_families: list = field(list(HELDOUT_FAMILIES),
                                   "families whose pairs are all split=heldout (split by family, never by row)")
    wrappers_file: str = field("", "a YAML file of wrapper families (empty = the shipped data/wrappers.yaml)")
    pairs_per_family: int = field(1, "paraphrases drawn per (prompt, family), without replacement")
    formats: list = field(["open", "mc"], "question formats to use from rows with a 'format' column")
    limit: int = field(0, "use only the first N clean prompts (0 = all)")
    max_new_tokens: int = field(32, "max tokens of a target")
    temperature: float = field(0.0, "target sampling temperature (0 = greedy)")
    top_p: float = field(1.0, "target top-p")
    drop_truncated: bool = field(False, "drop prompts whose clean answer hit max_new_tokens")
    seed: int = field(0, "base seed: paraphrase choice and sampling keyed by (seed, 'wrap', row id)")
    batch_size: int = field(16, "engine batch size")

    def key_inputs(self) -> dict[str, str]:
        """The subject model by fingerprint; the wrapper file (and, without --input, the shipped
        questions) by content (run.config_reads)."""
        from pathlib import Path

        from ..invariance import DATA
        from ..run import file_hash, models_read

        wrappers = Path(self.wrappers_file) if self.wrappers_file else DATA / "wrappers.yaml"
        out = {**models_read(self.model),
               "file:wrappers_file" if self.wrappers_file else "shipped:wrappers.yaml":
                   file_hash(wrappers) if wrappers.is_file() else f"unresolved:{wrappers}"}
        if not self.input:
            out["shipped:questions.jsonl"] = file_hash(QUESTIONS)
        return out

    def check(self) -> list[tuple[str, str]]:
        p = []
        if not self.families:
            p.append(("families", "give at least one family"))
        if self.pairs_per_family < 1:
            p.append(("pairs_per_family", "must be >= 1"))
        if self.temperature < 0:
            p.append(("temperature", "must be >= 0"))
        if not 0 < self.top_p <= 1:
            p.append(("top_p", "must be in (0, 1]"))
        bad = [f for f in self.formats if f not in ("open", "mc")]
        if bad:
            p.append(("formats", f"unknown {bad}; use open and/or mc"))
        fams = load_families(self.wrappers_file or None)  # a bad file raises its own file:line error
        try:
            select_families(self.families, fams)
            select_families(self.heldout_families, fams)
        except UserError as e:
            p.append(("families", str(e)))
        return p


# ------------------------------------------------------------------ pure transforms

def validity(row: dict, target: str, finish_reason: str, drop_truncated: bool) -> str | None:
    """Why a clean answer is unusable as a target (a DROP_REASONS entry), or None when it is kept."""
    if not target.strip():
        return "empty"
    if drop_truncated and finish_reason == "length":
        return "truncated"
    ans, wrong = row.get("answer"), row.get("wrong")
    if ans is not None and (not mentions(target, str(ans)) or (wrong is not None and mentions(target, str(wrong)))):
        return "wrong_answer"
    return None


def make_pairs(row: dict, target: str, family_names: list[str], fams: dict, heldout: set[str],
               cfg: WrapConfig) -> tuple[list[dict], int]:
    """Pairs for one clean row (pure given its target); also the count of families not applicable."""
    from ..records import content_id

    clean = clean_prompt(row)
    wrong = row.get("wrong")
    wrong = None if wrong is None else str(wrong)
    out, n_na = [], 0
    for name in family_names:
        fam = fams[name]
        temps = eligible(fam, wrong)
        if not temps:
            n_na += 1
            continue
        rng = random.Random(derive_seed(cfg.seed, STAGE, f"{row['id']}:{name}"))
        picks = rng.sample(range(len(temps)), min(cfg.pairs_per_family, len(temps)))
        for k in picks:
            wrapped = wrap_messages(clean, fam, temps[k], wrong=wrong, target=target)
            pair = {"clean": clean, "wrapped": wrapped, "family": name,
                    "wrapper": f"{name}#{fam['templates'].index(temps[k])}"}
            pair = {"id": content_id(pair, "pair"), **pair, "target": target,
                    "split": "heldout" if name in heldout else "train",
                    "clean_is_suffix": wrapped[-1]["content"].endswith(clean[-1]["content"])
                    and fam["kind"] != "pushback",
                    "source_id": row["id"], "answer": row.get("answer"), "wrong": wrong,
                    "format": row.get("format"), "category": row.get("category")}
            notes = fam.get("counterfactual_notes")
            if notes:
                if not pair["clean_is_suffix"]:
                    raise UserError(f"{name}: counterfactual families need prefix templates ({temps[k]!r})")
                pair["counterfactual"] = notes[rng.randrange(len(notes))]
            out.append(pair)
    return out, n_na


# ------------------------------------------------------------------ stage


def read_clean(cfg: WrapConfig) -> Any:
    from ..dataio import read_records

    res = read_records(cfg.input or QUESTIONS, "sft", require_response=False)
    rows = [r for r in res.rows if r.get("format") is None or r["format"] in cfg.formats]
    if not cfg.input:  # the shipped set: its eval questions are kept for `sharpset eval`
        rows = [r for r in rows if question_split(r["id"]) == "train"]
    if cfg.limit:
        rows = rows[: cfg.limit]
    return res, rows


def run(cfg: WrapConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..dataio import write_records
    from ..engine import GenerationRequest, SamplingParams
    from ..models.profiles import encode_prompt
    from ..stage import load_subject, prompt_room

    fams = load_families(cfg.wrappers_file or None)
    names = select_families(cfg.families, fams)
    heldout = set(select_families(cfg.heldout_families, fams))
    res, rows = read_clean(cfg)
    where = {r["id"]: res.where(i) for i, r in enumerate(res.rows)}
    subject = load_subject(cfg.model, log=log, run=run, role="subject", backend=cfg)
    tok, profile = subject.tok, subject.profile
    engine = subject.engine(cfg.batch_size)
    stops = subject.stop_ids()
    room = prompt_room(subject.config, cfg.max_new_tokens)

    done = run.done_samples()
    if done:
        log(f"resuming: {len(done)} of {len(rows)} targets already generated")
    reqs, todo = [], []
    for r in rows:
        if r["id"] in done:
            continue
        params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                seed=derive_seed(cfg.seed, STAGE, r["id"]), stop_token_ids=stops,
                                stop_strings=tuple(profile.stop_strings))
        ids = encode_prompt(profile, tok, clean_prompt(r))
        if room is not None and len(ids) > room:  # checked before any generation, naming the row
            raise UserError(f"{where[r['id']]}: messages: the prompt is {len(ids)} tokens; {cfg.model}'s context "
                            f"({room + cfg.max_new_tokens} positions) leaves {max(room, 0)} with max_new_tokens "
                            f"{cfg.max_new_tokens}: shorten the prompt or lower max_new_tokens")
        reqs.append(GenerationRequest(ids, params, key=r["id"]))
        todo.append(r)
    t0 = time.perf_counter()
    for j, out in engine.generate_iter(reqs, progress=False):
        r = todo[j]
        run.log_sample(r["id"], {"target": out.text.strip(), "finish_reason": out.finish_reason,
                                 "n_prompt_tokens": out.n_prompt_tokens, "n_new_tokens": out.n_new_tokens,
                                 "rendered_prompt": profile.render(clean_prompt(r), add_generation_prompt=True)})
    if reqs:
        log(f"targets: {len(reqs)} generated in {time.perf_counter() - t0:.1f} s")
    done = run.done_samples()

    pairs, drops, n_na = [], {k: 0 for k in DROP_REASONS}, 0
    for r in rows:
        s = done[r["id"]]
        why = validity(r, s["target"], s["finish_reason"], cfg.drop_truncated)
        if why:
            drops[why] += 1
            continue
        got, na = make_pairs(r, s["target"], names, fams, heldout, cfg)
        for p in got:
            p["provenance"] = {"stage": STAGE, "model": cfg.model, **cfg.backend_info(cluster=False),
                               "target_finish_reason": s["finish_reason"],
                               "target_tokens": s["n_new_tokens"], "seed": derive_seed(cfg.seed, STAGE, r["id"]),
                               "sampling": {"temperature": cfg.temperature, "top_p": cfg.top_p,
                                            "max_new_tokens": cfg.max_new_tokens},
                               "rendered_clean_prompt": s["rendered_prompt"]}
        pairs += got
        n_na += na
    write_records(pairs, run.path / "pairs.jsonl")
    kept = len(rows) - sum(drops.values())
    by_fam = {n: sum(p["family"] == n for p in pairs) for n in names}
    metrics = {"clean_prompts": len(rows), "valid_prompts": kept, "dropped_prompts": sum(drops.values()),
               "drop_reasons": drops, "pairs": len(pairs), "pairs_by_family": by_fam,
               "train_pairs": sum(p["split"] == "train" for p in pairs),
               "heldout_pairs": sum(p["split"] == "heldout" for p in pairs),
               "families_not_applicable": n_na}
    # counts are per clean prompt: written = prompts that yielded pairs, dropped = invalid targets,
    # plus rows filtered out by --formats/--limit (counted as dropped so read adds up)
    filtered = res.n_read - len(res.rejected) - len(rows)
    run.finish(counts={"read": res.n_read, "written": kept, "dropped": sum(drops.values()) + filtered,
                       "rejected": len(res.rejected)},
               outputs=["pairs.jsonl"], metrics=metrics)
    return metrics


def show(path: str, n: int = 5) -> str:
    """n pairs, clean vs wrapped vs target, for a person to read."""
    from ..dataio import read_records

    out = []
    for p in read_records(path, "pair").rows[:n]:
        out.append(f"--- {p['id']}  {p['wrapper']}  split={p['split']}  suffix={p.get('clean_is_suffix')}")
        for side in ("clean", "wrapped"):
            for m in p[side]:
                if m["role"] != "system":
                    out.append(f"[{side}:{m['role']}] {m['content']}")
        if p.get("counterfactual"):
            out.append(f"[counterfactual note] {p['counterfactual']}")
        out.append(f"[target] {p['target']}")
    return "\n".join(out)
