"""The pure per-row decisions of ``sharpset constrain``: a row's constraints (given or drawn), its
constrained prompt, a candidate's strict verdicts, health gates and known-answer check, the winner
among passing candidates, and the repair request. Records in, values out: no model, no I/O.
"""

from __future__ import annotations

from ...errors import UserError
from .config import STAGE, ConstrainConfig

REPAIR_TEXT = ("Rewrite your answer so that it also follows {these}: {rules} Keep what it says otherwise, "
               "and reply with the rewritten answer only.")


def row_constraints(row: dict, instruction: str, cfg: ConstrainConfig, types: list[str], where: str
                    ) -> tuple[list[dict], bool]:
    """(constraints, given) for one pool row: the row's own ``instruction_id_list``/``kwargs``
    (validated; a UserError naming ``where`` and the field) or a draw keyed by the row id."""
    from ...constraints import draw, rng_for, validate_kwargs

    if row.get("instruction_id_list") is not None:
        out = []
        kws = row.get("kwargs") or [None] * len(row["instruction_id_list"])
        for i, (t, kw) in enumerate(zip(row["instruction_id_list"], kws)):
            try:
                out.append({"id": t, "kwargs": validate_kwargs(t, kw), "phrasing": None})
            except ValueError as e:
                field_ = "instruction_id_list" if str(e).startswith(("unknown constraint", f"{t}: excluded")) \
                    else "kwargs"
                raise UserError(f"{where}: {field_}[{i}]: {e}") from None
        return out, True
    return draw(rng_for(cfg.seed, STAGE, row["id"]), instruction, types, cfg.weights()), False


def prompt_text(instruction: str, constraints: list[dict], given: bool) -> str:
    from ...constraints import user_turn

    return instruction if given else user_turn(instruction, constraints)


def verdicts(constraints: list[dict], prompt: str, text: str) -> list[bool]:
    """Strict verdict per constraint for one candidate."""
    from ...constraints import check

    return check([c["id"] for c in constraints], [c["kwargs"] for c in constraints], prompt, text)["strict"]


def pick_winner(passing: list[int], cands: list[dict], quality: dict[int, float | None] | None
                ) -> tuple[int, str]:
    """(index, how) of the winner among ``passing`` candidate indices: the highest quality_lm
    (compared at 4 decimals; None ranks last), then the fewest generated tokens, then the lowest
    index. ``how``: "only" (one passing), "quality_lm" (a unique best score), else "shortest"."""
    if len(passing) == 1:
        return passing[0], "only"
    q = {j: round(v, 4) for j, v in (quality or {}).items() if v is not None and j in passing}
    best = min(passing, key=lambda j: (-q[j] if j in q else float("inf"), cands[j]["n_new_tokens"], j))
    unique = best in q and list(q.values()).count(q[best]) == 1
    return best, "quality_lm" if unique else "shortest"


def gated(cfg: ConstrainConfig, prompt: str, cand: dict) -> bool:
    """True when the candidate fails one of ``cfg.gates`` (its health columns: text.degeneration.health)."""
    from ...text.degeneration import failed_gates, health

    if not cfg.gates:
        return False
    lang = "language_mismatch" in cfg.gates  # the only gate that reads the prompt (a language detection)
    h = health(cand["text"], prompt=prompt if lang else None, truncated=cand.get("truncated"))
    return bool(failed_gates(h, cfg.gates))


def right_answer(cfg: ConstrainConfig, row: dict, text: str) -> bool:
    """True unless ``answer_check`` is on, the pool row has a known ``answer`` and ``text`` does not state it."""
    from ...invariance import mentions

    answer = row.get("answer")
    return not (cfg.answer_check and isinstance(answer, str) and answer.strip()) or mentions(text, answer)


def repair_prompt(constraints: list[dict], unmet: list[int]) -> str:
    from ...constraints import render

    rules = " ".join(render(constraints[i]["id"], constraints[i]["kwargs"], constraints[i]["phrasing"] or 0)
                     for i in unmet)
    return REPAIR_TEXT.format(these="this instruction" if len(unmet) == 1 else "these instructions", rules=rules)
