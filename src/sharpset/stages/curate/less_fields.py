"""The config fields of ``curate --strategy less`` (:class:`LessFields`, mixed into ``CurateConfig``),
their checks and what ``--strategy less`` reads besides the pool (the target file, the selector).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...config import field

PAPER_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
PROJECTORS = ("torch", "trak")


@dataclass
class LessFields:
    """The config fields of ``--strategy less`` (mixed into ``CurateConfig``)."""

    target: str = field("", "less: rows showing the target behaviour (a few to a few dozen sft rows: .jsonl, "
                            ".parquet, a folder or a run folder), e.g. verified-constraint rows or rows of a shape spec")
    selector: str = field("smollm2-135m-instruct", "less: the model whose gradients select (embedded name, local "
                                                    "folder or hub id); may differ from the model trained later "
                                                    "(the paper's transfer result)")
    warmup_fraction: float = field(0.05, "less: share of the pool the LoRA warm-up trains on (paper: 5%)")
    warmup_min_rows: int = field(100, "less: at least this many warm-up rows. Ours: the paper's 5% of a few hundred "
                                      "rows is a warm-up of ~30 steps, and a short warm-up leaves every row's Adam "
                                      "step mostly its stored momentum. Measured (issue 25, SmolLM2 selector, 543-row "
                                      "pool, 8 constraint target rows): 28 rows x 2 epochs ranked the pool's "
                                      "constraint rows below its Magpie rows (AUC 0.16), 109 rows x 4 epochs above "
                                      "them (AUC 0.84, 15 of the top 16)")
    warmup_epochs: int = field(4, "less: warm-up epochs, one checkpoint at the end of each (paper: 4)")
    warmup_lr: float = field(2e-4, "less: warm-up peak learning rate. Paper: 2e-5 over ~1,700 steps (4 epochs of 5% "
                                   "of 270k rows at batch 32); here a warm-up is ~100 steps, so the project's "
                                   "measured small-set rate (issue 14)")
    warmup_batch_size: int = field(4, "less: warm-up rows per step. Paper: 32; at 5% of a few hundred rows that is "
                                      "under one step per epoch")
    selector_lora_r: int = field(8, "less: LoRA rank of the selector. Paper: 128 on 7B; the projection costs "
                                    "gradient dims x proj_dim per row, and r 8 on q,k,v,o is ~0.9M dims for "
                                    "SmolLM2-135M (r 128: ~15M)")
    selector_lora_alpha: int = field(32, "less: LoRA alpha (paper: alpha / r = 4)")
    selector_lora_dropout: float = field(0.1, "less: LoRA dropout during the warm-up (paper: 0.1; off for gradients)")
    selector_modules: list = field(list(PAPER_MODULES), "less: LoRA target modules (paper: q,k,v,o projections)")
    selector_max_length: int = field(2048, "less: longer rows get no features and are left out, counted (paper: 2048)")
    proj_dim: int = field(8192, "less: random-projection dimension (paper: 8192; for N pool rows a JL projection keeps "
                                "cosines within ~sqrt(8 ln N / d): 0.09 at N = 5000)")
    proj_seed: int = field(0, "less: seed of the Rademacher projection (paper: 0); recorded in the datastore")
    projector: str = field("torch", "less: who draws the projection: torch (sharpset's TorchProjector: sign bits "
                                    "in blocks of 128 gradient dims, several times faster on a CPU, issue 25) or "
                                    "trak (the reference code's BasicProjector); the two draw different matrices")
    checkpoint_weights: str = field("lr", "less: weight of each warm-up checkpoint in the score: lr (the mean "
                                          "learning rate of its epoch, the paper's) or equal")
    target_task_column: str = field("", "less: target rows grouped by this column (mean within a group, max over "
                                        "groups: the paper's subtasks); '' = each target row its own group")
    chunk_rows: int = field(32, "less: rows whose gradients are held and projected together (memory: chunk_rows x "
                                "checkpoints x gradient dims floats)")
    datastore: str = field("", "less: folder holding gradient datastores (one per selector + warm-up + pool key); "
                               "'' = less-datastores/ beside the curate run folder", in_key=False)

    def less_reads(self) -> dict[str, str]:
        """What ``--strategy less`` reads besides the pool: the target file by content, the selector."""
        from ...run import file_hash, models_read

        out = dict(models_read(self.selector))
        p = Path(self.target) if self.target else None
        out["file:target"] = file_hash(p) if p is not None and p.exists() else f"missing:{self.target}"
        return out

    def less_check(self) -> list[tuple[str, str]]:
        p = []
        if getattr(self, "strategy", "less") == "less":
            if not self.target:
                p.append(("target", "required with --strategy less: a file of rows showing the target behaviour"))
            elif not Path(self.target).exists():
                p.append(("target", f"{self.target}: no such file or folder"))
            if not self.selector:
                p.append(("selector", "required with --strategy less"))
        if not 0 < self.warmup_fraction <= 1:
            p.append(("warmup_fraction", "must be in (0, 1]"))
        for name in ("warmup_min_rows", "warmup_epochs", "warmup_batch_size", "selector_lora_r", "selector_lora_alpha",
                     "selector_max_length", "proj_dim", "chunk_rows"):
            if getattr(self, name) < 1:
                p.append((name, "must be >= 1"))
        if self.warmup_lr <= 0:
            p.append(("warmup_lr", "must be > 0"))
        if not 0 <= self.selector_lora_dropout < 1:
            p.append(("selector_lora_dropout", "must be in [0, 1)"))
        if not self.selector_modules:
            p.append(("selector_modules", "name at least one module (paper: q_proj,k_proj,v_proj,o_proj)"))
        if self.checkpoint_weights not in ("lr", "equal"):
            p.append(("checkpoint_weights", "must be lr or equal"))
        if self.projector not in PROJECTORS:
            p.append(("projector", f"must be one of {', '.join(PROJECTORS)}"))
        return p


def less_curate(options: dict, target: str, selector: str, datastore: str) -> dict:
    """curate's config for a pipeline's LESS selection (sweep, quickstart): the user's ``less_options``,
    then the fields the pipeline sets itself (what :func:`less_options_problems` refuses in them)."""
    return {**options, "strategy": "less", "target": target, "selector": selector, "datastore": datastore}


def less_options_problems(options: object) -> list[tuple[str, str]]:
    """What is wrong with a pipeline's ``less_options`` (sweep, quickstart): not a mapping, a name that
    is not a LESS field of curate (or one the pipeline sets itself: target, selector, datastore), or a
    value curate's own check refuses."""
    from dataclasses import fields

    if not isinstance(options, dict):
        return [("less_options", "give a mapping of curate's LESS fields, e.g. {warmup_epochs: 2}")]
    own = {"target", "selector", "datastore"}  # the pipeline sets these per selection
    names = {f.name for f in fields(LessFields)} - own
    bad = sorted(k for k in options if k not in names)
    if bad:
        return [("less_options", f"unknown {bad}; choose from {', '.join(sorted(names))}")]
    try:
        probe = LessFields(**options)
        probe.strategy = "none"  # check the values only, not the target and selector the pipeline fills in
        return [("less_options", f"{k}: {why}") for k, why in probe.less_check()]
    except TypeError as e:
        return [("less_options", str(e))]
