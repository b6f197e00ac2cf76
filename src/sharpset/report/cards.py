"""Dataset cards: a ``README.md`` with Hugging Face dataset-card metadata beside every dataset a run writes.

:func:`write_card` (a run folder, or one data file) writes YAML front matter -- ``pretty_name``,
``license`` (the licences of the models that made the rows), ``size_categories``,
``task_categories``, ``tags`` and ``configs`` (one config per data file, with its ``data_files``, so
``datasets.load_dataset(folder)`` loads exactly the data files and the hub viewer shows them) -- and
a body: sizes, columns (name, type, an example), provenance (stage, resolved config, input hashes,
git SHA from the manifest) and the licences of the models, followed back through the run folders
the inputs came from (a curated set's rows were written by the synth model, not by curate's
embedder). :func:`card_all` does it for every run folder under a folder.

The metadata is built and serialised with ``huggingface_hub.DatasetCardData`` (the hub's own card
model), so its keys and YAML are what the hub expects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from .collect import SKIP_DIRS

HF_LICENSE = {"Apache-2.0": "apache-2.0", "MIT": "mit", "Gemma terms of use": "gemma"}
DATA_SUFFIXES = (".jsonl", ".parquet")
NOT_DATA = {"samples.partial.jsonl", "rejected.jsonl", "losses.jsonl"}
MODEL_KEYS = ("model", "judge", "scorer", "aligned_model", "base_model", "base")  # config fields naming a generator
# stages whose rows a model wrote: a dataset with one of them in its lineage is tagged synthetic
SYNTHETIC_STAGES = ("synth", "wrap", "restyle", "constrain", "eval", "quickstart")
# run folders a pipeline writes that no `sharpset` command of their name writes
PIPELINE_STEPS = {"mix": "the `mix` step of `sharpset run quickstart` (the targeted set: its parts joined)"}
SIZE_BOUNDS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
               (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


def size_category(n: int) -> str:
    """Hugging Face's size bucket for ``n`` rows."""
    return next((label for bound, label in SIZE_BOUNDS if n < bound), "n>100M" if n < 10 ** 9 else "other")


def _rows(path: Path, limit: int | None = None) -> tuple[list[dict], int]:
    """Up to ``limit`` rows of a data file, and its row count."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        return t.slice(0, limit or t.num_rows).to_pylist(), t.num_rows
    from ..dataio import iter_jsonl

    rows, n = [], 0
    for r in iter_jsonl(path, missing_ok=False):
        if limit is None or len(rows) < limit:
            rows.append(r)
        n += 1
    return rows, n


def _type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "struct"
    if isinstance(v, list):
        inner = sorted({_type(x) for x in v} - {"null"})
        if inner == ["struct"] and all(isinstance(x, dict) and {"role", "content"} <= set(x) for x in v):
            return "list[message]"
        return f"list[{'|'.join(inner) or 'null'}]"
    return type(v).__name__


def columns(rows: list[dict]) -> list[dict]:
    """Name, type(s) and one example value per column, over the rows given."""
    out: dict[str, dict] = {}
    for r in rows:
        for k, v in r.items():
            c = out.setdefault(k, {"name": k, "types": set(), "example": None})
            c["types"].add(_type(v))
            if c["example"] is None and v not in (None, "", [], {}):
                c["example"] = v
    return [{"name": c["name"], "type": " | ".join(sorted(c["types"] - {"null"}) or ["null"])
             + (" (nullable)" if "null" in c["types"] and len(c["types"]) > 1 else ""), "example": c["example"]}
            for c in out.values()]


def _cell(v: Any, width: int = 90) -> str:
    """A Markdown table cell: JSON text, cut to ``width``, with HTML and table syntax escaped."""
    import html

    s = json.dumps(v, ensure_ascii=False, default=str)  # strings too: newlines show as \n, not vanish
    s = s[1:-1] if isinstance(v, str) else s
    s = s[:width] + ("…" if len(s) > width else "")
    return html.escape(s, quote=False).replace("|", "\\|").replace("`", "\\`")


def _manifest(run: Path) -> dict:
    try:
        return json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{run / 'manifest.json'}: cannot read: {e}") from None


def _config(run: Path) -> dict:
    p = run / "config.yaml"
    return (yaml.safe_load(p.read_text(encoding="utf-8")) or {}) if p.is_file() else {}


def _run_folder_of(path: Path) -> Path | None:
    for p in [path, *path.parents]:
        if (p / "manifest.json").is_file():
            return p
    return None


def _locate(raw: str, run: Path) -> Path | None:
    p = Path(raw)
    for q in ([p] if p.is_absolute() else [Path.cwd() / p, run.parent / p, run.parent.parent / p, run / p]):
        if q.exists():
            return q.resolve()
    return None


def model_names(run: Path) -> list[str]:
    """Models that wrote or judged this run's rows: those its manifest records, and generator fields of its config."""
    man, cfg = _manifest(run), _config(run)
    names = [str(v.get("name") or v.get("path")) for v in (man.get("models") or {}).values()
             if isinstance(v, dict) and (v.get("name") or v.get("path"))]
    names += [str(cfg[k]) for k in MODEL_KEYS if isinstance(cfg.get(k), str) and cfg[k]]
    names += [str(m) for m in cfg.get("models") or [] if isinstance(m, str)]
    return list(dict.fromkeys(names))


def lineage(run: Path, _seen: set | None = None) -> list[dict]:
    """This run and the run folders its inputs came from, recursively: ``[{run, stage, models}]``."""
    seen = _seen if _seen is not None else set()
    run = run.resolve()
    if run in seen:
        return []
    seen.add(run)
    man = _manifest(run)
    out = [{"run": run, "stage": man.get("stage"), "models": model_names(run)}]
    for raw in man.get("inputs") or {}:
        p = _locate(raw, run)
        src = _run_folder_of(p) if p is not None else None
        if src is not None and src != run:
            out += lineage(src, seen)
    return out


def licence_of(name: str, run: Path | None = None) -> tuple[str, str]:
    """``(hub licence id, as stated)`` of a model: an embedded model's registry licence; a `sharpset
    train` output inherits its starting model's; anything else is 'unknown'."""
    from ..models.registry import EMBEDDED

    if name in EMBEDDED:
        lic = EMBEDDED[name].licence
        return HF_LICENSE.get(lic, "other"), lic
    p = _locate(name, run) if run is not None else (Path(name) if Path(name).exists() else None)
    tr = _run_folder_of(p) if p is not None else None
    if tr is not None and _manifest(tr).get("stage") == "train":
        start = _config(tr).get("model")
        if start and start != name:
            hub, stated = licence_of(str(start), tr)
            return hub, f"{stated} (fine-tuned from {start})"
    return "unknown", "unknown (local model: check its licence)"


def data_files(run: Path) -> list[Path]:
    """The dataset outputs of a run folder: its manifest's listed .jsonl/.parquet outputs (logs,
    loss curves and rejects excluded), the primary one first."""
    outs = list((_manifest(run).get("outputs") or {}))
    files = [run / o for o in outs if Path(o).suffix in DATA_SUFFIXES and Path(o).name not in NOT_DATA]
    return [f for f in files if f.is_file()]


def _config_name(rel: str, taken: set) -> str:
    base = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(rel).with_suffix("").as_posix()) or "data"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def write_card(path: str | Path, *, pretty_name: str | None = None, license: str | list[str] | None = None,  # noqa: A002
               task_categories: list[str] | None = None, tags: list[str] | None = None,
               description: str | None = None) -> Path:
    """Write ``README.md`` for the dataset(s) of a run folder, or for one data file (the card goes
    in its folder). Returns the README's path. ``license`` overrides the models' licences."""
    from huggingface_hub import DatasetCardData

    from ..dataio import write_text

    path = Path(path).resolve()
    if not path.exists():
        raise UserError(f"{path}: no such run folder or data file")
    run = path if path.is_dir() and (path / "manifest.json").is_file() else _run_folder_of(path)
    if path.is_file():
        if path.suffix not in DATA_SUFFIXES:
            raise UserError(f"{path}: not a data file (.jsonl or .parquet)")
        folder, files = path.parent, [path]
    elif run is not None:
        folder, files = run, data_files(run)
    else:
        raise UserError(f"{path}: a folder without manifest.json; give a run folder or a data file")
    if not files:
        raise UserError(f"{folder}: no dataset outputs (.jsonl/.parquet) listed in its manifest")
    man = _manifest(run) if run is not None else {}
    cfg = _config(run) if run is not None else {}
    lin = lineage(run) if run is not None else []
    lic: dict[str, str] = {}
    for step in lin:
        for m in step["models"]:
            hub, stated = licence_of(m, step["run"])
            lic.setdefault(m, f"{stated} [{hub}]")
    hub_ids = sorted({v.rsplit("[", 1)[1].rstrip("]") for v in lic.values()}) or ["unknown"]
    taken: set = set()
    configs, summaries = [], []
    for i, f in enumerate(files):
        rel = f.relative_to(folder).as_posix()
        sample, n = _rows(f, limit=200)
        name = _config_name(rel, taken)
        configs.append({"config_name": name, "data_files": [{"split": "train", "path": rel}],
                        **({"default": True} if i == 0 else {})})
        summaries.append({"name": name, "file": rel, "rows": n, "bytes": f.stat().st_size,
                          "columns": columns(sample)})
    stage = man.get("stage") or "data"
    synthetic = any(s["stage"] in SYNTHETIC_STAGES for s in lin)
    data = DatasetCardData(
        pretty_name=pretty_name or f"sharpset {stage}: {folder.name}",
        license=license or (hub_ids[0] if len(hub_ids) == 1 else hub_ids),
        size_categories=[size_category(summaries[0]["rows"])],
        task_categories=task_categories or ["text-generation"],
        language=["en"],
        tags=tags or ["sharpset", str(stage), *(["synthetic"] if synthetic else [])],
        configs=configs)
    body = [f"# {_cell(data.pretty_name, 200)}", ""]
    if description:
        body += [description, ""]
    by = PIPELINE_STEPS.get(str(stage), f"`sharpset {stage}`")
    body += [f"Written by {by}" + (f" (transform version {man.get('transform_version')})" if man else "")
             + ". Load with `datasets.load_dataset(\"<this folder>\")` (default config: "
             f"`{configs[0]['config_name']}`) or `datasets.load_dataset(\"json\", data_files=...)`.", "",
             "## Sizes", "", "| config | file | rows | bytes |", "|---|---|---|---|"]
    body += [f"| {s['name']} | `{_cell(s['file'])}` | {s['rows']} | {s['bytes']} |" for s in summaries]
    for s in summaries:
        body += ["", f"## Columns of `{_cell(s['file'])}`", "", "| column | type | example |", "|---|---|---|"]
        body += [f"| {_cell(c['name'], 40)} | {_cell(c['type'], 40)} | {_cell(c['example'])} |" for c in s["columns"]]
    body += ["", "## Models that made it and their licences", "",
             "The rows were generated, judged or selected by these models (this run and the runs its inputs came "
             "from); the data may carry their terms. This is a record, not legal advice.", ""]
    body += [f"- `{_cell(m, 120)}`: {_cell(v, 160)}" for m, v in lic.items()] or ["- none recorded"]
    if man:
        git = man.get("git") or {}
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        body += ["", "## Provenance", "",
                 f"- stage: `{_cell(stage)}`; status: {_cell(man.get('status'))}; created {_cell(man.get('created'))}",
                 f"- git SHA: `{_cell(git.get('sha'))}`{dirty}", f"- run key: `{_cell(man.get('key'))}`",
                 f"- counts: {_cell(man.get('counts'), 300)}", "- inputs (sha256):"]
        body += [f"  - `{_cell(k, 160)}`: `{_cell(v, 70)}`" for k, v in (man.get("inputs") or {}).items()] or ["  - none"]
        if len(lin) > 1:
            body += ["- lineage: " + " ← ".join(f"{_cell(s['stage'])} ({_cell(s['run'].name)})" for s in lin)]
        dumped = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True).rstrip().replace("```", "'''")
        body += ["", "Resolved config:", "", "```yaml", dumped, "```"]
    readme = folder / "README.md"
    write_text(readme, f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n")
    return readme


def card_all(folder: str | Path, **kwargs: Any) -> list[Path]:
    """A card for every run folder under ``folder`` (itself included) that holds dataset outputs."""
    import os

    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        here = Path(dirpath)
        if "manifest.json" in filenames and data_files(here):
            out.append(write_card(here, **kwargs))
    return out
