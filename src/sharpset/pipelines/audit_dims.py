"""Claim 7's targets (``sharpset run audit``, issue 23): N rows of the audit's pool selected for one
alignment dimension by the dimensions suite's own scorers (:mod:`sharpset.evaluate.dimensions`; no
new scorer), the user turn against the pool row's response:

- ``lexical``: the highest ``content_reuse`` (the share of the user's content words the response
  reuses); a row whose user turn has no content word (reuse undefined) last;
- ``emotional``: the highest sentiment ``concordance`` among rows whose user turn carries sentiment
  (VADER polarity not neutral), then the rest by concordance -- most pool instructions are neutral,
  and a neutral reply to a neutral request "concords" perfectly while showing nothing of matching
  an emotion, which is what the suite's prompts (sad, angry, excited, anxious turns) ask for.

Ties by row id, so the selection is a pure function of the pool. A stage of its own
(``select-lexical`` / ``select-emotional`` in the audit's folder): STAGE ``dimsel``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

from ..config import field
from ..run import RunDir

STAGE = "dimsel"
VERSION = 1
DIMENSIONS = ("lexical", "emotional")


@dataclass
class DimSelectConfig:
    input: str = field("", "SFT rows to select from (file, folder or run folder)")
    n: int = field(0, "rows selected (all when the input holds fewer)")
    by: str = field("lexical", "the dimension selected for: lexical (content-word reuse) or emotional (sentiment "
                               "concordance, user turns with sentiment first)")

    def check(self) -> list[tuple[str, str]]:
        p = []
        if self.n < 1:
            p.append(("n", "must be >= 1"))
        if self.by not in DIMENSIONS:
            p.append(("by", f"must be one of {', '.join(DIMENSIONS)}, got {self.by!r}"))
        return p


def score(row: dict, by: str) -> tuple:
    """The row's sort key for ``by`` (larger first): lexical (reuse defined, reuse); emotional (the user
    turn carries sentiment, concordance)."""
    from ..evaluate.dimensions import emotional_alignment, lexical_alignment
    from ..records import instruction_of, response_of

    user, answer = instruction_of(row), response_of(row)
    if by == "lexical":
        reuse = lexical_alignment(user, answer)["content_reuse"]
        return (reuse is not None, reuse or 0.0)
    emo = emotional_alignment(user, answer)
    return (emo["user_polarity"] != 0, emo["concordance"])


def run(cfg: DimSelectConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..dataio import read_records, write_records

    rows = read_records(cfg.input, "sft").rows
    keyed = sorted(((score(r, cfg.by), r["id"], r) for r in rows), key=lambda t: (tuple(-float(x) for x in t[0]), t[1]))
    picked = keyed[:cfg.n]
    out = [{**r, "dimension": cfg.by, "dimension_score": float(s[1]), "dimension_defined": bool(s[0])}
           for s, _, r in picked]  # flat tag columns: the score and whether it was defined / the turn had sentiment
    write_records(out, run.path / "sft.jsonl")
    low = picked[-1][0] if picked else None
    log(f"dimension selection ({cfg.by}): {len(out)} of {len(rows)} rows" +
        ("" if low is None else f", the last kept scoring {float(low[1]):.3g}" + ("" if low[0] else " (its key undefined)")))
    run.finish(counts={"read": len(rows), "written": len(out), "dropped": len(rows) - len(out), "rejected": 0},
               outputs=["sft.jsonl"],
               metrics={"by": cfg.by, "scores": [round(float(s[1]), 4) for s, _, _ in picked],
                        "defined": sum(1 for s, _, _ in picked if s[0])})
    return {"written": len(out)}


DIMSEL = SimpleNamespace(STAGE=STAGE, VERSION=VERSION, DimSelectConfig=DimSelectConfig, run=run)
