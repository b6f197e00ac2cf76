"""LESS's gradient datastore: the pool's projected, unit-length features per row and checkpoint, a run
folder of its own keyed by the selector, the warm-up, the projection and the pool's rows (never the
target), built chunk by chunk with every raw gradient spilled to disk so a killed build resumes per
row (:mod:`.less` says why chunks are padded).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .less_fields import LessFields
from .less_projection import projection_info, projector
from .less_selector import Selector, adam_direction, load_checkpoint_state, load_selector, row_gradient

DATASTORE_STAGE = "less-datastore"
DATASTORE_VERSION = 1


@dataclass
class DatastoreConfig:
    """What a gradient datastore depends on (its run key): the selector, the warm-up, the projection
    and the pool's rows -- not the target, not the scoring."""

    selector: str
    seed: int
    warmup_fraction: float
    warmup_min_rows: int
    warmup_epochs: int
    warmup_lr: float
    warmup_batch_size: int
    selector_lora_r: int
    selector_lora_alpha: int
    selector_lora_dropout: float
    selector_modules: list
    selector_max_length: int
    proj_dim: int
    proj_seed: int
    chunk_rows: int
    pool_ids: str  # sha256 over the candidate rows' ids in canonical order
    # trak here (torch in LessFields): the key omits a field at its default, so a datastore built
    # before issue 25 (all trak) keeps its key and meaning, and a torch one gets a key of its own
    projector: str = "trak"

    def key_inputs(self) -> dict[str, str]:
        from ...run import models_read

        return models_read(self.selector)

    @classmethod
    def of(cls, cfg: LessFields, rows: Sequence[dict]) -> "DatastoreConfig":
        names = {f.name for f in dataclasses.fields(cls)} - {"pool_ids"}
        ids = hashlib.sha256("\n".join(r["id"] for r in rows).encode()).hexdigest()
        return cls(**{n: getattr(cfg, n) for n in names}, pool_ids=ids)


class Stopped(Exception):
    """Raised by :func:`featurize` after ``stop_after_rows`` rows (tests: a kill mid-build)."""


def featurize(sel: Selector, examples: Sequence[dict], kind: str, folder: Path, chunk_rows: int, proj,
              log: Callable[[str], None] = print, on_chunk: Callable[[int, list[str]], None] | None = None,
              stop_after_rows: int | None = None) -> list[dict]:
    """Features of ``examples`` (kind ``adam``: pool rows, ``sgd``: target rows) for every checkpoint,
    in ``folder/chunks/<k>.safetensors`` (tensor ``features`` [rows, checkpoints, proj_dim], unit
    rows; ids in the metadata). Resumes: chunks already written are kept, rows whose raw gradient was
    spilled (``folder/spill``) are not recomputed. Returns the chunk index ``[{file, ids}]``."""
    import torch
    from safetensors.torch import load_file, save

    from ...dataio import atomic_write

    n_ck, dim = len(sel.checkpoints), sel.grad_dim
    index, done_rows = [], 0
    for k in range(0, len(examples), chunk_rows):
        part = examples[k:k + chunk_rows]
        name = f"chunks/{k // chunk_rows:05d}.safetensors"
        index.append({"file": name, "ids": [e["id"] for e in part]})
        if (folder / name).exists():
            continue
        grads = torch.zeros(n_ck * chunk_rows, dim)  # padded: every projection has the same shapes
        for c, ck in enumerate(sel.checkpoints):
            state = None
            for i, ex in enumerate(part):
                spill = folder / "spill" / ck.name / f"{ex['id']}.safetensors"
                if spill.exists():
                    grads[c * chunk_rows + i] = load_file(str(spill))["g"]
                    continue
                if state is None:
                    state = load_checkpoint_state(sel, ck)
                g = row_gradient(sel, ex)
                if kind == "adam":
                    g = adam_direction(g, state)
                grads[c * chunk_rows + i] = g
                atomic_write(spill, lambda f, g=g: f.write(save({"g": g.contiguous()})))
                done_rows += 1
                if stop_after_rows is not None and done_rows >= stop_after_rows:
                    raise Stopped(f"stopped after {done_rows} rows")
        proj_out = proj.project(grads, model_id=0).reshape(n_ck, chunk_rows, -1)[:, :len(part)]
        feats = torch.nn.functional.normalize(proj_out.transpose(0, 1).contiguous(), dim=-1)
        # one metadata key: safetensors writes a multi-key metadata map in hash order, not byte-stable
        meta = {"less": json.dumps({"ids": index[-1]["ids"], "kind": kind,
                                    "checkpoints": [c.name for c in sel.checkpoints]}, sort_keys=True)}
        atomic_write(folder / name, lambda f: f.write(save({"features": feats}, metadata=meta)))
        if on_chunk is not None:
            on_chunk(k // chunk_rows, index[-1]["ids"])
        for ck in sel.checkpoints:
            for ex in part:
                (folder / "spill" / ck.name / f"{ex['id']}.safetensors").unlink(missing_ok=True)
        log(f"less {kind} features: {min(k + chunk_rows, len(examples))}/{len(examples)} rows")
    shutil.rmtree(folder / "spill", ignore_errors=True)
    return index


def read_features(folder: Path, index: Sequence[dict]):
    """Yield (ids, features [rows, checkpoints, dim]) chunk by chunk (memory: one chunk)."""
    from safetensors.torch import load_file

    for entry in index:
        yield entry["ids"], load_file(str(folder / entry["file"]))["features"]


@dataclass
class Datastore:
    path: Path
    key: str
    index: dict[str, Any]  # index.json


def open_datastore(cfg: LessFields, rows: Sequence[dict], root: Path, log: Callable[[str], None] = print,
                   stop_after_rows: int | None = None) -> tuple[Datastore, Selector | None]:
    """Find or build (resuming a killed build) the pool's gradient datastore under ``root``.
    Returns it, with the loaded selector when this call had to load it (else None)."""
    from ...dataio import write_json
    from ...run import RunDir

    dcfg = DatastoreConfig.of(cfg, rows)
    run = RunDir.open(None, DATASTORE_STAGE, DATASTORE_VERSION, dcfg, seeds={"seed": cfg.seed, "proj_seed": cfg.proj_seed},
                      runs_root=root, name="less")
    if run.complete:
        log(f"less datastore: {run.path} (cached)")
        return Datastore(run.path, run.key, json.loads((run.path / "index.json").read_text())), None
    try:
        log(f"less datastore: {run.path}")
        sel = load_selector(cfg, run.path, rows, log)
        run.record_model("selector", {"name": cfg.selector, "lora_r": cfg.selector_lora_r,
                                      "modules": list(cfg.selector_modules), "grad_dim": sel.grad_dim})
        examples, skipped = sel.examples(rows)
        logged = set(run.done_samples())

        def on_chunk(k: int, ids: list[str]) -> None:
            for i in ids:
                if i not in logged:
                    run.log_sample(i, {"chunk": k})
                    logged.add(i)

        proj = projector(sel.grad_dim, cfg)
        chunks = featurize(sel, examples, "adam", run.path, cfg.chunk_rows, proj, log, on_chunk, stop_after_rows)
        index = {"ids_order": "candidate rows in canonical order", "chunks": chunks, "rows": len(examples),
                 "left_out_too_long": skipped, "warmup_ids": sel.warmup_ids, "grad_dim": sel.grad_dim,
                 "checkpoints": [{"name": c.name, "step": c.step, "mean_lr": c.mean_lr} for c in sel.checkpoints],
                 "projection": projection_info(cfg, sel.grad_dim), "selector": cfg.selector}
        write_json(run.path / "index.json", index)
        run.finish(counts={"read": len(rows), "written": len(examples), "dropped": len(skipped), "rejected": 0},
                   outputs=["index.json", *[c["file"] for c in chunks]],
                   metrics={"rows": len(examples), "grad_dim": sel.grad_dim, "proj_dim": cfg.proj_dim,
                            "checkpoints": len(sel.checkpoints)})
    finally:
        run.close()
    return Datastore(run.path, run.key, index), sel
