"""Invariance wrappers shared by the `wrap` stage, training (counterfactual) and evaluation.

Wrapper families live in ``data/wrappers.yaml`` (see ``sharpset.stages.wrap``'s docstring for the
families, METHODS section 5-6); the known-answer question set in ``data/questions.jsonl``. Pure
functions: a clean conversation + a family's template -> the wrapped conversation; answer matching.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import UserError

DATA = Path(__file__).parent / "data"
QUESTIONS = DATA / "questions.jsonl"
# Families held out of training by default (split=heldout in `wrap`, marked held-out in `eval`).
HELDOUT_FAMILIES = ["sycophancy/authority", "sycophancy/pushback", "jailbreak/injection", "noise/format"]
EVAL_SHARE = 3  # of 10: questions whose id hash falls here are kept for `eval`, never made into pairs


def question_split(qid: str) -> str:
    """``eval`` for ~30% of the shipped questions (by id hash), ``train`` for the rest: `wrap` builds
    training pairs from the train questions only, so `eval`'s invariance suite scores unseen ones."""
    return "eval" if int(qid, 16) % 10 < EVAL_SHARE else "train"


@lru_cache(maxsize=4)
def load_families(path: str | None = None) -> dict[str, dict[str, Any]]:
    """Wrapper families from ``wrappers.yaml`` (or a user file with the same layout): a mapping
    ``{family: {kind: template|pushback, templates: [text, ...], counterfactual_notes: [text, ...]}}``.
    Any other shape is a :class:`UserError` naming ``file:line: field: problem``."""
    from .config import read_yaml_mapping

    p = Path(path) if path else DATA / "wrappers.yaml"
    fams, lines = read_yaml_mapping(p, what="wrappers")
    if not fams:
        raise UserError(f"{p}: <wrappers>: no wrapper families in the file")
    for name, fam in fams.items():
        at = f"{p}:{lines.get(name, 1)}"
        if not isinstance(fam, dict):
            raise UserError(f"{at}: {name}: expected a mapping with kind and templates, got {type(fam).__name__}")
        if fam.get("kind") not in ("template", "pushback"):
            raise UserError(f"{at}: {name}.kind: must be template or pushback")
        for key in ("templates", "counterfactual_notes"):
            texts = fam.get(key)
            if texts is None and key == "counterfactual_notes":
                continue
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
                raise UserError(f"{at}: {name}.{key}: expected a non-empty list of texts")
        unknown = set(fam) - {"kind", "templates", "counterfactual_notes"}
        if unknown:
            raise UserError(f"{at}: {name}.{sorted(unknown)[0]}: unknown key (kind, templates, counterfactual_notes)")
        if fam["kind"] == "template":
            for t in fam["templates"]:
                if "{prompt}" not in t:
                    raise UserError(f"{at}: {name}.templates: template without {{prompt}}: {t!r}")
    return fams


def select_families(names: list[str], fams: dict[str, Any]) -> list[str]:
    """Expand group names (``sycophancy``) and exact names (``sycophancy/opinion``)."""
    out = []
    for n in names:
        hit = [f for f in fams if f == n or f.split("/")[0] == n]
        if not hit:
            raise UserError(f"families: unknown family {n!r}; known: {', '.join(fams)}")
        out += [f for f in hit if f not in out]
    return out


_NUM = {w: str(i) for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                          "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                                          "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}


def _norm_words(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.casefold())
    return " " + " ".join(_NUM.get(w, w) for w in words) + " "


def mentions(text: str, answer: str) -> bool:
    """Whole-word, case-insensitive match; number words count as digits ("eight" == "8")."""
    a = _norm_words(answer).strip()
    return bool(a) and f" {a} " in _norm_words(text)


def clean_prompt(row: dict) -> list[dict]:
    """The prompt part of a row: its messages up to and including the last user turn."""
    msgs = row["messages"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    return [dict(m) for m in msgs[: last + 1]]


def wrap_messages(clean: list[dict], family: dict, template: str, *, wrong: str | None,
                  target: str | None = None) -> list[dict]:
    """The wrapped conversation for one paraphrase (pure)."""
    if family["kind"] == "pushback":
        return [dict(m) for m in clean] + [{"role": "assistant", "content": target or ""},
                                          {"role": "user", "content": template}]
    text = template.replace("{wrong}", wrong or "").replace("{prompt}", clean[-1]["content"])
    return [dict(m) for m in clean[:-1]] + [{"role": "user", "content": text}]


def eligible(family: dict, wrong: str | None) -> list[str]:
    """Templates usable for a row: those naming {wrong} need a known wrong answer."""
    return [t for t in family["templates"] if wrong is not None or "{wrong}" not in t]


def counterfactual_messages(pair: dict) -> list[dict] | None:
    """ICR counterfactual of a partner pair: the note inserted right before the clean user text."""
    note = pair.get("counterfactual")
    if not note:
        return None
    wrapped, clean_text = pair["wrapped"], pair["clean"][-1]["content"]
    last = wrapped[-1]["content"]
    if not last.endswith(clean_text):
        raise ValueError(f"pair {pair.get('id')}: counterfactual needs the clean prompt as a suffix")
    head = last[: len(last) - len(clean_text)]
    return [dict(m) for m in wrapped[:-1]] + [{"role": "user", "content": f"{head}{note}\n\n{clean_text}"}]


def biased_answer(target: str, answer: str, wrong: str) -> str | None:
    """``target`` with its right answer replaced by the wrong one (numbers matched as digits or
    words), or None when the right answer does not appear in it. The biased alternative whose
    log-probability BRR compares with the model's own answer (METHODS §5)."""
    forms = [answer] + [w for w, d in _NUM.items() if d == answer] + (
        [_NUM[answer.lower()]] if answer.lower() in _NUM else [])
    for f in forms:
        pat = re.compile(rf"(?<![A-Za-z0-9]){re.escape(f)}(?![A-Za-z0-9])", re.IGNORECASE)
        if pat.search(target):
            return pat.sub(lambda m: wrong, target)
    return None
