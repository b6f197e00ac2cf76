"""The ``sharpset`` command line: thin; each subcommand parses flags and calls one stage.

Exit codes: 0 ok, 2 bad input/config (message ``path:line: field: problem``), 3 broken install
(what failed to import and how to reinstall), 130 interrupted (re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import InstallError, UserError, install_problem


def _console():
    from rich.console import Console

    con = Console(highlight=False)
    if not con.is_terminal:  # piped output: do not wrap tables at 80 columns
        con = Console(highlight=False, width=160)
    return con


# -- models -----------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .models.registry import EMBEDDED, cache_root, cache_state

    con = _console()
    if args.action == "show":
        return _models_show(args.name, con)
    table = Table(title=f"embedded models (cache: {cache_root()})")
    for col in ("name", "kind", "role", "params", "licence", "package", "cache"):
        table.add_column(col, no_wrap=col in ("name", "package"))
    for spec in EMBEDDED.values():
        table.add_row(spec.name, spec.kind, spec.role, spec.params, spec.licence, spec.package, cache_state(spec.name))
    con.print(table)
    con.print("Any local Hugging Face model folder (or hub id, where the network allows) works wherever a model name does.")
    return 0


def _models_show(name: str | None, con) -> int:
    from rich.markup import escape

    from .models.profiles import profile_for
    from .models.registry import EMBEDDED, chat_family, resolve_path

    if not name:
        raise UserError("models show: give a model name")
    spec = EMBEDDED.get(name)
    if spec and spec.kind != "causal-lm":
        con.print(f"{name}: {spec.kind}; {spec.role}; {spec.params}; no chat profile")
        return 0
    from transformers import AutoTokenizer

    path, _ = resolve_path(name, log=lambda m: con.print(escape(m)))
    tok = AutoTokenizer.from_pretrained(str(path))
    prof = profile_for(tok, chat_family(name))
    con.print(f"[bold]{escape(name)}[/bold]  ({escape(str(path))})")
    for key in ("family", "bos", "default_system", "pre_query", "assistant_header", "end_of_turn",
                "stop_strings", "template_hash"):
        con.print(f"  {key:17s} {escape(repr(getattr(prof, key)))}")
    demo = [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}]
    con.print("  rendered example:\n" + escape(prof.render(demo)))
    return 0


# -- derive -----------------------------------------------------------------------------------
def cmd_derive(args: argparse.Namespace) -> int:
    from .models.derive import DeriveConfig, derive

    cfg = DeriveConfig(model=args.model, keep_layers=args.keep_layers, heal_data=args.heal_data,
                       heal_steps=args.heal_steps, heal_lr=args.heal_lr, heal_batch_size=args.heal_batch_size,
                       heal_max_length=args.heal_max_length, heal_seed=args.heal_seed)
    for name, problem in cfg.check():
        if name.startswith("heal_"):  # K is checked against the source's depth, naming the range
            raise UserError(f"--{name.replace('_', '-')}: {problem}")
    derive(args.model, args.keep_layers, args.out, heal=cfg.heal(), force=args.force)
    print(f"done: {args.out}")
    return 0


# -- validate ---------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from .records import read_records

    res = read_records(args.data, kind=args.kind, on_error="skip", require_response=not args.prompts_only)
    n_bad = len(res.rejected)
    print(f"{args.data}: read {res.n_read}, valid {len(res.rows)}, invalid {n_bad}")
    for rej in res.rejected[: args.max_errors]:
        print(f"{rej['path']}:{rej['line']}: {rej['field']}: {rej['problem']}", file=sys.stderr)
    if n_bad > args.max_errors:
        print(f"... and {n_bad - args.max_errors} more", file=sys.stderr)
    return 2 if n_bad else 0


# -- recipes ----------------------------------------------------------------------------------
def cmd_recipes(args: argparse.Namespace) -> int:
    from . import recipes
    from .config import describe

    if args.action == "ls":
        for name, path in recipes.shipped().items():
            r = recipes.load(str(path))
            print(f"{name:14s} {r.pipeline:12s} {r.description}")
        return 0
    if not args.name:
        raise UserError(f"recipes {args.action}: give a recipe name or .yaml path")
    if args.action == "show":
        path = recipes.resolve_file(args.name)
        print(f"# {path}")
        print(path.read_text(encoding="utf-8"), end="")
        r = recipes.load(args.name)
        _, cls = recipes.pipeline(r.pipeline)
        print(f"\n# all config fields of pipeline '{r.pipeline}' ({cls.__name__}):")
        for name, help_, default in describe(cls):
            print(f"#   {name} = {default!r}: {help_}")
        return 0
    cfg = recipes.validate(args.name)
    print(f"{args.name}: ok ({type(cfg).__name__})")
    return 0


# -- run --------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from . import recipes
    from .config import parse_set
    from .run import RunDir, data_inputs

    recipe = recipes.load(args.recipe)
    fn, _ = recipes.pipeline(recipe.pipeline)
    sets = parse_set(args.set)
    if args.claims is not None:  # `--claims 1,3`: the audit's claims field
        sets["claims"] = args.claims
    cfg = recipe.build_config(sets)
    mod = sys.modules[fn.__module__]
    inputs = data_inputs(cfg)  # the pipeline's own data (a pool file): an edited one is a new run
    for p in inputs:
        if not Path(p).exists():
            raise UserError(f"{p}: no such file or folder")
    if args.dry_run:  # the plan, without running anything (pipelines that offer one: audit)
        if not hasattr(mod, "dry_run"):
            raise UserError(f"--dry-run: pipeline '{recipe.pipeline}' has no plan to print")
        from .run import input_hashes, run_key

        key = run_key(mod.STAGE, mod.VERSION, cfg, input_hashes(cfg, inputs))
        print(mod.dry_run(cfg, Path(args.out) if args.out else Path("runs") / f"{recipe.name}-{key[:10]}"), end="")
        return 0
    run = RunDir.open(args.out, mod.STAGE, mod.VERSION, cfg, seeds={"seed": getattr(cfg, "seed", 0)},
                      inputs=inputs, name=recipe.name, force=args.force)
    if run.complete:
        print(f"up to date (cached): {run.path}")
        report = (run.manifest.get("metrics") or {}).get("report")
        if report:
            print(f"report: {report}")
        return 0
    print(f"run folder: {run.path}")
    metrics = _guarded(run, lambda: fn(cfg, run))
    for k, v in metrics.items():
        print(f"  {k}: {v}")
    print(f"done: {run.path}")
    if metrics.get("report"):  # the last line a person reads: where to look
        print(f"report: {metrics['report']}")
    return 0


# -- stages -----------------------------------------------------------------------------------
# name: (module, config class, help). Each stage module has STAGE, VERSION, run(cfg, run, log) and
# optionally show(output_path, n). Imported lazily per stage, so a broken one never breaks the rest.
STAGES: dict[str, tuple[str, str, str]] = {
    "synth": ("sharpset.stages.synth", "SynthConfig", "Magpie self-synthesis: the aligned model writes instruction/response pairs"),
    "tag": ("sharpset.stages.tag", "TagConfig", "judge scores (quality, difficulty, input quality, category), IFD, shape features"),
    "dedup": ("sharpset.stages.dedup", "DedupConfig", "exact / MinHash / embedding near-duplicate removal"),
    "curate": ("sharpset.stages.curate", "CurateConfig", "select a small set (quality-diversity, IFD, k-center, quota, baselines) "
               "or build format-vs-task control sets"),
    "restyle": ("sharpset.stages.restyle", "RestyleConfig", "rewrite responses into a response-shape spec, keeping their content"),
    "constrain": ("sharpset.stages.constrain", "ConstrainConfig", "verified-constraint examples: attach checkable "
                  "constraints to instructions, sample k answers, keep the ones that pass every check"),
    "wrap": ("sharpset.stages.wrap", "WrapConfig", "turn clean prompts into invariance pairs with the subject model's own targets"),
    "train": ("sharpset.train", "TrainConfig", "LoRA or full fine-tuning: SFT, BCT, ACT, counterfactual regulariser"),
    "sweep": ("sharpset.pipelines.sweep", "SweepConfig", "effect per example: for each target x size x seed, select, "
              "train with one step budget, evaluate every suite, compare paired with the untrained model"),
    "eval": ("sharpset.evaluate.stage", "EvalConfig", "evaluate models on every suite (format, shape, invariance, "
             "knowledge, speech acts, dimensions, token shift, health), paired across models"),
}


def _add_stage(sub, name: str, module: str, cls_name: str, help_: str) -> None:
    import dataclasses
    import importlib

    from .config import add_arguments

    try:
        mod = importlib.import_module(module)
        cls = getattr(mod, cls_name)
    except Exception as e:  # noqa: BLE001 -- report when used, do not break other commands
        # an import that fails is a broken install (exit 3, how to reinstall), not bad input
        err = install_problem(e) if isinstance(e, ImportError) else InstallError(f"{name}: unavailable: {e}")
        sp = sub.add_parser(name, help=f"{help_} [unavailable: {e}]")
        sp.add_argument("args", nargs=argparse.REMAINDER)  # whatever was asked, report the install
        sp.set_defaults(fn=lambda a, err=err: (_ for _ in ()).throw(err))
        return
    sp = sub.add_parser(name, help=help_, description=(mod.__doc__ or help_).strip().split("\n\n")[0])
    fields = {f.name for f in dataclasses.fields(cls)}
    if "input" in fields:
        sp.add_argument("input_pos", nargs="?", metavar="INPUT", help="input data (file, folder or run folder)")
    if "models" in fields:
        sp.add_argument("models_pos", nargs="*", metavar="MODEL",
                        help="models: embedded names, local HF folders or train run folders")
    add_arguments(sp, cls)
    sp.add_argument("--out", default=None, help=f"run folder (default runs/{name}-<key>)")
    sp.add_argument("--force", action="store_true", help="replace a run folder holding a different/finished run")
    sp.add_argument("--config", default=None, metavar="YAML", help="read config fields from a YAML file (flags win)")
    if hasattr(mod, "show"):
        sp.add_argument("--show", type=int, default=0, metavar="N", help="print N rendered output rows for a person to read")
    if name == "train":  # launch flags: not config fields, so they leave the run key alone (issue 15)
        sp.add_argument("--launch", choices=["accelerate"], default=None,
                        help="run the same training under `accelerate launch` (data parallel; docs/scale.md)")
        sp.add_argument("--accelerate-config", default=None, metavar="NAME|YAML",
                        help="with --launch: shipped cpu-2proc | cpu-2proc-fsdp | ddp | fsdp, or a config file "
                             "(default: ddp with a GPU, else cpu-2proc)")
        sp.add_argument("--num-processes", type=int, default=None, metavar="N",
                        help="with --launch: processes (overrides the config's num_processes)")
    sp.set_defaults(fn=lambda a, mod=mod, cls=cls: cmd_stage(a, mod, cls))


def cmd_stage(args: argparse.Namespace, mod, cls) -> int:
    from .config import from_args, read_yaml_mapping
    from .run import RunDir, data_inputs

    base, lines = read_yaml_mapping(args.config) if args.config else ({}, {})
    if getattr(args, "input_pos", None):
        args.input = args.input_pos
    if getattr(args, "models_pos", None):
        args.models = list(args.models_pos)
    cfg = from_args(cls, args, base, base_where=args.config, base_lines=lines)
    # The data a config reads (input, or input_paths(): train's --sft and --bct) is hashed into the
    # run key, and RunDir.open adds what else it reads (config.key_inputs(): models by fingerprint,
    # spec and wrapper files, shipped data, suite versions), so a changed input never hits a stale
    # cache (issue 21: tests/test_stale_cache.py changes each one).
    inputs = data_inputs(cfg)
    for p in inputs:
        if not Path(p).exists():
            raise UserError(f"{p}: no such file or folder")
    run = RunDir.open(args.out, mod.STAGE, mod.VERSION, cfg, seeds={"seed": getattr(cfg, "seed", 0)},
                      inputs=inputs, force=args.force)
    if run.complete:
        print(f"up to date (cached): {run.path}")
    else:
        print(f"run folder: {run.path}")
        metrics = _guarded(run, lambda: mod.run(cfg, run))
        for k, v in metrics.items():
            print(f"  {k}: {v}")
        print(f"done: {run.path}")
    if getattr(args, "show", 0):
        print(mod.show(str(run.path), args.show))
    return 0


def _guarded(run, work):
    """Run ``work()``; a fresh run that stops on bad input or a broken install leaves nothing behind.
    However it ends, the command lets go of the run folder's lock (as a process that exits does), so
    the same command can resume it -- here, or under ``--launch`` in other processes."""
    from .records import RecordError

    try:
        return work()
    except (UserError, RecordError, ImportError):
        if not run.discard() and run.path.exists() and run.finished_inside():
            print(f"kept {run.path}: it holds finished stage runs; fix the input and run the same command to "
                  "resume", file=sys.stderr)
        raise
    finally:
        run.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sharpset",
        description="Build small, sharply targeted alignment example sets (format/shape and invariances), "
        "train or steer a model with them, and measure what each example bought.",
    )
    p.add_argument("--version", action="version", version=f"sharpset {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = sub.add_parser("models", help="list the embedded models and their cache state; 'show NAME' prints a chat profile")
    m.add_argument("action", nargs="?", choices=["ls", "show"], default="ls")
    m.add_argument("name", nargs="?", help="model name or local folder (with 'show')")
    m.set_defaults(fn=cmd_models)

    v = sub.add_parser("validate", help="check every record of a data file/folder; exit 2 if any is invalid")
    v.add_argument("data", help="a .jsonl or .parquet file, or a datasets folder")
    v.add_argument("--kind", choices=["sft", "pair", "prompt_completion"], default=None,
                   help="record kind (default: detected per row from its keys)")
    v.add_argument("--prompts-only", action="store_true", help="rows may end with a user turn (prompt sets)")
    v.add_argument("--max-errors", type=int, default=20, help="how many errors to print (default 20)")
    v.set_defaults(fn=cmd_validate)

    d = sub.add_parser("derive", help="write a smaller model of the same family: the first K decoder layers, "
                                      "final norm and head (a proxy-tuning expert/anti-expert; trains like any model)",
                       description="Write a smaller model of the same family and vocabulary: its token embeddings, "
                                   "first K decoder layers, final norm and output head, unchanged (recorded in "
                                   "config.json and a README.md card). For proxy-tuning (--engine proxy): the anti-expert; "
                                   "tuned with `sharpset train`, the expert. A plain truncation decodes noise: "
                                   "--heal-steps N first distils its layers and final norm from the source on "
                                   "--heal-data's text (embeddings and head frozen), so it is a working small model.")
    d.add_argument("model", help="source model: embedded name, local HF folder or `sharpset train` run folder")
    d.add_argument("--keep-layers", type=int, required=True, metavar="K", help="decoder layers to keep (1..N-1)")
    d.add_argument("--out", required=True, help="model folder to write (atomically)")
    d.add_argument("--force", action="store_true", help="replace a model folder that holds something else")
    d.add_argument("--heal-data", default="", metavar="FILE", help="heal: records whose plain text (user and "
                   "assistant turns) the derivative is distilled from its source on (with --heal-steps)")
    d.add_argument("--heal-steps", type=int, default=0, help="heal: distillation steps, KL(source || derived) "
                   "(default 0: the truncation unchanged, which decodes noise: no anti-expert)")
    d.add_argument("--heal-lr", type=float, default=1e-4, help="heal: AdamW learning rate, decayed linearly to 0 "
                   "(default 1e-4)")
    d.add_argument("--heal-batch-size", type=int, default=4, help="heal: rows per step (default 4)")
    d.add_argument("--heal-max-length", type=int, default=256, help="heal: tokens per row (default 256)")
    d.add_argument("--heal-seed", type=int, default=0, help="heal: seed of the batch order (default 0)")
    d.set_defaults(fn=cmd_derive)

    r = sub.add_parser("run", help="run a recipe end to end: a shipped name (quickstart) or a .yaml file")
    r.add_argument("recipe", help="recipe name (see 'sharpset recipes ls') or path to a recipe .yaml")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    r.add_argument("--out", default=None, help="run folder (default runs/<recipe>-<key>; same command -> same folder)")
    r.add_argument("--force", action="store_true", help="replace a run folder that holds a different or finished run")
    r.add_argument("--claims", default=None, metavar="1,3", help="audit: the claims to run (= --set claims=1,3)")
    r.add_argument("--dry-run", action="store_true", help="print the plan (audit: claims, arms, stage runs, "
                                                          "estimated cost) without running")
    r.set_defaults(fn=cmd_run)

    c = sub.add_parser("recipes", help="ls | show NAME | validate NAME_OR_FILE")
    c.add_argument("action", choices=["ls", "show", "validate"])
    c.add_argument("name", nargs="?")
    c.set_defaults(fn=cmd_recipes)

    for name, (module, cls_name, help_) in STAGES.items():
        _add_stage(sub, name, module, cls_name, help_)

    from .judge_check import add_parser as add_judge_check

    add_judge_check(sub)
    from .report import add_parser as add_report

    add_report(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    # progress lines appear as they happen also when output goes to a file or a pipe (a log, CI)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "launch", None):
            from .train.distributed import launched
            from .train.launch import relaunch

            if not launched():  # the launched processes see SHARPSET_LAUNCHED and train
                return relaunch(list(sys.argv[1:] if argv is None else argv), args.launch,
                                args.accelerate_config, args.num_processes)
        return args.fn(args)
    except (UserError, InstallError) as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except ImportError as e:  # a declared dependency missing or broken: an install problem
        err = install_problem(e)
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except ValueError as e:
        from .records import RecordError

        if isinstance(e, RecordError):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
