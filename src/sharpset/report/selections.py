"""What the training sets hold: curate's gates and the pseudo-refusals in each set (issue 20).

A *pseudo-refusal* declines or disclaims near its start and then helps anyway ("I'm sorry ... as an AI
I don't have the capability ... However, I can certainly help with that!"):
:func:`sharpset.text.degeneration.is_pseudo_refusal`. Curate's ``pseudo_refusal`` gate drops them
from a tagged pool; a base tuned on them copies the pattern. Two tables, read from the run folders:

- **gates** (:func:`gate_rows`): per ``curate`` run, the rows each gate dropped, from its
  ``curate_report.json`` ``gates`` (the gates run in order; a row is counted by the first that
  drops it). A gate the run did not use is "off"; one whose column the pool lacks is "skipped".
- **sets** (:func:`set_rows`): per training set -- each selection run's ``selected.jsonl``
  (``curate``: curated or random; quickstart's ``mix``: the targeted set) and each other data file
  a ``train`` run here names in its ``sft`` -- its rows and how many of their assistant answers
  (the last assistant turn) are pseudo-refusals, with a Wilson 95% interval, per ``part`` where the
  rows carry one, and the train runs that trained on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .collect import Collection, Run
from .svg import esc

SELECTION_STAGES = ("curate", "mix")
SET_FILE = "selected.jsonl"


def gate_rows(col: Collection) -> list[dict[str, Any]]:
    """Per curate run: ``{"run", "pool", "selected", "gates": {gate: dropped count | "skipped: ..." |
    "off"}, "note"}`` -- every gate any run here names, in the order the runs list them."""
    out = []
    for r in col.runs:
        if r.stage != "curate":
            continue
        gates, note = {}, ""
        rep = r.path / str(r.metrics.get("report") or "curate_report.json")
        try:
            got = json.loads(rep.read_text(encoding="utf-8")).get("gates")
        except (OSError, ValueError, AttributeError):
            got, note = None, f"no readable {rep.name}"
        configured = r.config.get("gates", [])
        if isinstance(got, dict):
            gates = {str(g): v for g, v in got.items()}
        elif got is None and not note:
            note = "its report records no gate counts (curate before issue 13)"
        for g in configured if isinstance(configured, list) else []:
            gates.setdefault(str(g), "not recorded")
        out.append({"run": r.name, "pool": r.counts.get("read"), "selected": r.counts.get("written"),
                    "gates": gates, "configured": configured, "note": note})
    names: list[str] = []
    for row in out:
        names += [g for g in row["gates"] if g not in names]
    for row in out:
        row["gates"] = {g: row["gates"].get(g, "off") for g in names}
    return out


def _sft_path(train: Run) -> Path | None:
    """The data a train run read (its config ``sft``), where it is still on disk."""
    raw = train.config.get("sft")
    if not raw:
        return None
    p = Path(str(raw))
    for q in ([p] if p.is_absolute() else [Path.cwd() / p, train.path.parent / p]):
        if q.exists():
            return q.resolve()
    return p  # not on disk: matched to a selection by its folder and file name only


def _match(sft: Path, sets: dict[Path, dict]) -> Path | None:
    """The selection file a train run's ``sft`` names: the file, its run folder, or (folders moved
    since) the one selection whose folder and file name it ends with."""
    for f in sets:
        if sft == f or sft == f.parent:
            return f
    tail = [f for f in sets if (sft.parent.name, sft.name) == (f.parent.name, f.name) or sft.name == f.parent.name]
    return tail[0] if len(tail) == 1 else None


def count_pseudo(rows: list[dict]) -> dict[str, Any]:
    """``{"n", "pseudo_refusal": wilson(k, n), "by_part": {part: [k, n]}}`` over the rows' last
    assistant answers (:func:`sharpset.records.response_of`)."""
    from ..records import response_of
    from ..stats import wilson
    from ..text.degeneration import is_pseudo_refusal

    k, parts = 0, {}
    for r in rows:
        hit = is_pseudo_refusal(response_of(r))
        k += hit
        if r.get("part") is not None:
            kn = parts.setdefault(str(r["part"]), [0, 0])
            kn[0] += hit
            kn[1] += 1
    return {"n": len(rows), "pseudo_refusal": wilson(k, len(rows)), "by_part": parts}


def set_rows(col: Collection) -> list[dict[str, Any]]:
    """Per training set: ``{"set", "stage", "path", "trained_by": [train run names], **count_pseudo}``
    (or ``"note"`` when its rows cannot be read) -- the selection runs first, in run order."""
    from ..dataio import iter_jsonl, read_records
    from ..errors import UserError
    from ..records import RecordError

    sets: dict[Path, dict] = {}
    for r in col.runs:
        f = r.path / SET_FILE
        if r.stage in SELECTION_STAGES and f.is_file():
            sets[f.resolve()] = {"set": r.name, "stage": r.stage, "path": f, "trained_by": []}
    for t in col.trains:
        sft = _sft_path(t)
        if sft is None:
            continue
        hit = _match(sft, sets)
        if hit is None and sft.exists():
            hit = sft
            sets.setdefault(sft, {"set": f"{t.name}: {sft.name}", "stage": "train data", "path": sft,
                                  "trained_by": []})
        if hit is not None:
            sets[hit]["trained_by"].append(t.name)
    out = []
    for f, row in sets.items():
        try:
            rows = (list(iter_jsonl(f, missing_ok=False)) if f.name == SET_FILE
                    else read_records(f, on_error="skip").rows)
            row.update(count_pseudo([r for r in rows if isinstance(r, dict)]))
        except (OSError, ValueError, UserError, RecordError) as e:
            row["note"] = f"rows not readable: {e}"
        out.append(row)
    return out


def _gate_cell(v: Any) -> tuple[str, str]:
    """(text, title) of one gate's cell."""
    if isinstance(v, int):
        return str(v), ""
    s = str(v)
    return ("skipped", s) if s.startswith("skipped") else (s, "")


def pseudo_text(row: dict) -> str:
    """Like "4 of 16 (25%, 95% 10%-49%)"; per part after it where the rows carry one."""
    w = row["pseudo_refusal"]
    if not w["n"]:
        return "no rows"
    lo, hi = w["ci95"]
    text = f"{w['k']} of {w['n']} ({w['rate']:.0%}, 95% {lo:.0%}-{hi:.0%})"
    if row.get("by_part"):
        text += "; " + ", ".join(f"{p} {k}/{n}" for p, (k, n) in row["by_part"].items())
    return text


INTRO = ("A <b>pseudo-refusal</b> declines or disclaims near its start and then helps anyway (“I'm sorry … as an "
         "AI I don't have the capability … However, I can certainly help with that!”; "
         "<code>is_pseudo_refusal</code>). Curate's <code>pseudo_refusal</code> gate drops them from a tagged pool; "
         "a base tuned on them copies the pattern.")


def selections_section(col: Collection) -> str:
    """The two tables of the module docstring as HTML; empty when no curate run or training set is here."""
    gates, sets = gate_rows(col), set_rows(col)
    if not gates and not sets:
        return ""
    out = ['<section id="selections"><h2>Training sets: gates and pseudo-refusals</h2>', f"<p>{INTRO}</p>"]
    if gates:
        names = list(gates[0]["gates"])
        out.append('<h3>Rows each curate gate dropped</h3><p class="meta">Gates run in order; a row is counted by '
                   'the first gate that drops it. off = not among the run\'s gates; skipped = the pool lacks '
                   'the gate\'s column (tag it with the lm scores).</p>'
                   '<div class="tablewrap"><table><thead><tr><th>curate run</th><th class="num">pool rows</th>'
                   + "".join(f'<th class="num">{esc(g)}</th>' for g in names)
                   + '<th class="num">selected</th><th></th></tr></thead><tbody>')
        for g in gates:
            cells = []
            for name in names:
                text, title = _gate_cell(g["gates"][name])
                cells.append(f'<td class="num{" muted" if not text.isdigit() else ""}"'
                             f'{f" title={chr(34)}{esc(title)}{chr(34)}" if title else ""}>{esc(text)}</td>')
            out.append(f'<tr><td>{esc(g["run"])}</td><td class="num">{esc(g["pool"] if g["pool"] is not None else "—")}'
                       f'</td>{"".join(cells)}<td class="num">{esc(g["selected"] if g["selected"] is not None else "—")}'
                       f'</td><td class="muted">{esc(g["note"])}</td></tr>')
        out.append('</tbody></table></div>')
    if sets:
        out.append('<h3>Pseudo-refusals in each training set</h3><p class="meta">Counted on each row\'s last '
                   'assistant answer; Wilson 95% interval; per part for a mixed set.</p>'
                   '<div class="tablewrap"><table><thead><tr><th>set</th><th>made by</th><th>trained by</th>'
                   '<th class="num">rows</th><th>pseudo-refusals</th></tr></thead><tbody>')
        for s in sets:
            hit = s.get("pseudo_refusal", {}).get("k")
            out.append(f'<tr><td>{esc(s["set"])}</td><td>{esc(s["stage"])}</td>'
                       f'<td>{esc(", ".join(s["trained_by"]) or "—")}</td><td class="num">{esc(s.get("n", "—"))}</td>'
                       f'<td{" class=warncell" if hit else ""}>{esc(s.get("note") or pseudo_text(s))}</td></tr>')
        out.append('</tbody></table></div>')
    out.append('</section>')
    return "".join(out)


def selections_md(col: Collection) -> list[str]:
    """The same two tables as Markdown lines (``md`` escapes data text)."""
    from .markdown import _table

    gates, sets = gate_rows(col), set_rows(col)
    if not gates and not sets:
        return []
    out = ["## Training sets: gates and pseudo-refusals", "",
           "A pseudo-refusal declines or disclaims near its start and then helps anyway (`is_pseudo_refusal`); "
           "curate's `pseudo_refusal` gate drops them.", ""]
    if gates:
        names = list(gates[0]["gates"])
        out += ["Rows each curate gate dropped (in order; a row is counted by the first gate that drops it):", ""]
        out += _table(["curate run", "pool rows", *names, "selected", "note"],
                      [[g["run"], g["pool"] if g["pool"] is not None else "-",
                        *[_gate_cell(g["gates"][n])[0] for n in names],
                        g["selected"] if g["selected"] is not None else "-", g["note"] or "-"] for g in gates])
    if sets:
        out += ["Pseudo-refusals in each training set (last assistant answer; Wilson 95%):", ""]
        out += _table(["set", "made by", "trained by", "rows", "pseudo-refusals"],
                      [[s["set"], s["stage"], ", ".join(s["trained_by"]) or "-", s.get("n", "-"),
                        s.get("note") or pseudo_text(s)] for s in sets])
    return out
