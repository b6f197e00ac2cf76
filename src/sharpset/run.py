"""Run folders: resolved config, manifest, per-sample log, content-hash key, resume.

Every command that produces something writes one folder (STYLE habit 4)::

    <out>/config.yaml          resolved config (the stage dataclass, every field)
    <out>/manifest.json        key, stage, transform version, git SHA + dirty flag, package versions,
                               python/platform, seeds, input hashes, models (path, chat-template hash),
                               counts, timings, status ("running" | "complete")
    <out>/samples.partial.jsonl   per-sample outputs appended (fsync'd) as they finish
    <out>/<outputs>            final outputs, written atomically at the end

The key is a hash of (stage, transform version, resolved config, inputs): the content hash of each
data file, and what else the config says it reads (``key_inputs()``, :func:`config_reads`): models
by a cheap fingerprint (:func:`model_key`: package version, config/tokenizer contents and weight-file
sizes and mtimes, or a hub id with its cached commit), spec and wrapper files and shipped data by
content, suite versions. A killed command re-run with the same arguments finds the same folder,
keeps the samples already logged and computes only the rest; since randomness is keyed per row
(seed, stage, row id) the final output is the same as an uninterrupted run's. A complete folder
with the same key is a cache hit.

One process at a time (issue 21): :meth:`RunDir.open` takes an advisory lock (``flock`` on
``.sharpset.lock`` in the folder, the holder's pid inside) until the run finishes; a second process
opening the same folder meanwhile stops with exit 2 naming that pid.

What a run wrote (issue 10): the manifest's ``foreign`` lists what the folder held before the run
first opened it; everything else in it -- outputs, ``checkpoints/``, ``trl/checkpoint-*``,
subfolders included -- is the run's. ``--force`` removes exactly that and keeps the foreign
entries, so a forced run with a new config never resumes the old run's weights or samples, and
never deletes a file the user put there. A fresh run that stops on bad input
(:meth:`RunDir.discard`) takes back what it created, so bad input leaves no folder behind -- except a
pipeline folder that already holds a finished stage run, which is kept for the same command to resume.

Beside the key, a manifest holds a ``content_key`` (:func:`content_key`): the same hash with every
path replaced by what it holds, so the same work done in another folder can be found and reused
(:mod:`sharpset.pipelines.reuse`; issue 23).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from contextlib import suppress
from typing import Any, Iterable, Iterator

import yaml

from .dataio import append_jsonl, iter_jsonl, write_text
from .errors import UserError
from .records import canonical_json as _canonical_json

PACKAGES = ("sharpset", "torch", "transformers", "tokenizers", "safetensors", "datasets", "accelerate",
            "peft", "trl", "sentence-transformers", "numpy", "pyarrow")


def canonical_json(obj: Any) -> str:
    """Run keys hash this: :func:`sharpset.records.canonical_json` with non-JSON values as ``str``."""
    return _canonical_json(obj, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


LOCK = ".sharpset.lock"  # a run folder's advisory lock (RunDir.open); never part of what a folder holds


def file_hash(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, or of a folder's files (sorted relative paths + contents; run-folder locks skipped)."""
    h = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != LOCK) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def derive_seed(seed: int, stage: str, row_id: str) -> int:
    """Randomness keyed by (seed, stage, row id), never global state (STYLE habit 3)."""
    digest = hashlib.sha256(f"{seed}:{stage}:{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def git_state() -> dict[str, Any]:
    """Git SHA and dirty flag of the checkout sharpset is installed from (None if not a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return {"sha": None, "dirty": None}
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return {"sha": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, str | None], ...]:
    return tuple((name, _version(name)) for name in PACKAGES)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a manifest records (read once per process)."""
    return dict(_package_versions())


def config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def key_config(config: Any) -> dict[str, Any]:
    """The config fields that enter the run key: those that differ from their defaults.

    So adding a new option (with a default that keeps the old behaviour) leaves every existing
    run's key, and its cache, valid. The other side of that rule: changing a field's *default*
    changes what a run does without changing its key, so it must bump the stage's VERSION.
    Fields declared ``in_key=False`` (progress, per-call budgets) never enter it.
    """
    if not dataclasses.is_dataclass(config):
        return dict(config)
    out = {}
    for f in dataclasses.fields(config):
        if not f.metadata.get("in_key", True):
            continue
        value = getattr(config, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if value != default:
            out[f.name] = value
    return json.loads(canonical_json(out))


def _same_run_older_key(path: Path, old: dict, stage: str, version: int, config: Any,
                        input_hashes: dict[str, str]) -> bool:
    """True when a run folder made by an older key scheme (every config field hashed) holds this
    very run: same stage, transform version and inputs, and its saved config differs from the
    defaults exactly where this one does (fields it lacks were added since, at their defaults)."""
    if (old.get("stage"), old.get("transform_version"), old.get("inputs", {})) != (stage, version, input_hashes):
        return False
    if not dataclasses.is_dataclass(config):
        return False
    try:
        saved = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
        merged = dataclasses.replace(config, **{k: v for k, v in saved.items()
                                               if k in {f.name for f in dataclasses.fields(config)}})
    except (OSError, yaml.YAMLError, TypeError):
        return False
    known = {f.name for f in dataclasses.fields(config)}
    return set(saved) <= known and key_config(merged) == key_config(config)


# -- what a run reads besides its data (issue 21) ---------------------------------------------------
def data_inputs(config: Any) -> list[str]:
    """The data files a config reads, hashed whole into its run key: ``input_paths()`` where the
    config has it (train: --sft, --bct; eval: --pairs; the pipelines: their pool), else ``input``."""
    if hasattr(config, "input_paths"):
        return [str(p) for p in config.input_paths() if p]
    return [config.input] if getattr(config, "input", None) else []


def config_reads(config: Any) -> dict[str, str]:
    """``config.key_inputs()``: everything else the run reads -- models, spec and wrapper files,
    shipped data, suite versions -- as ``{label: fingerprint}`` (labels like ``model:judge``,
    ``file:spec``, ``shipped:eval-data``, ``suite:format``). :meth:`RunDir.open` adds these to the
    input hashes, so a changed model folder, spec or shipped file is never served from cache."""
    fn = getattr(config, "key_inputs", None)
    out = {str(k): str(v) for k, v in fn().items()} if callable(fn) else {}
    reads = getattr(config, "backend_reads", None)  # models an engine's options name (the proxy's expert)
    if callable(reads):
        out.update(reads())
    return out


def model_key(name: str) -> str:
    """A model's fingerprint for run keys (:func:`sharpset.models.registry.model_fingerprint`):
    embedded package version, a local folder's config/tokenizer contents and weight-file stats, or a
    hub id with its cached commit -- never the weights' bytes."""
    from .models.registry import model_fingerprint

    return model_fingerprint(name)


def models_read(*names: str | None, **by_role: str | None) -> dict[str, str]:
    """``{label: model_key(name)}`` for each model named, positionally or by role (``model=...``;
    None and "" skipped). A local folder is labelled by its path, as a data input is, so provenance
    (report/cards.py's lineage) follows a tuned model back to the train run that wrote it; anything
    else as ``model:<name>``."""
    return {(str(n) if Path(str(n)).exists() else f"model:{n}"): model_key(str(n))
            for n in [*names, *by_role.values()] if n}


def spec_key(name_or_path: str) -> str:
    """A response-shape spec (shipped name or YAML file) by its file's content hash."""
    from .text.spec import resolve_spec

    try:
        return file_hash(resolve_spec(name_or_path))
    except (UserError, OSError):
        return f"unresolved:{name_or_path}"  # the stage names the problem when it loads the spec


def input_hashes(config: Any, inputs: Iterable[str | Path] = ()) -> dict[str, str]:
    """The inputs a run key hashes: each data input's content hash, then :func:`config_reads`."""
    out = {str(p): file_hash(Path(p)) for p in inputs}
    out.update(config_reads(config))
    return out


def run_key(stage: str, version: int, config: Any, input_hashes: dict[str, str]) -> str:
    payload = {"stage": stage, "version": version, "config": key_config(config), "inputs": input_hashes}
    return sha256_text(canonical_json(payload))


def _is_path(label: str) -> bool:
    return bool(label) and Path(label).exists()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """A run folder's manifest.json as a dict, or None where it is missing, unreadable or not an object."""
    with suppress(ValueError, OSError):
        m = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
        return m if isinstance(m, dict) else None
    return None


# where finished runs are searched for: pipelines/reuse.py (whole runs by content key) and eval's
# answer donors (evaluate/donors.py)
SEARCH_DEPTH = 5  # runs/<sweep>/cells/<cell>/proxy/<arm>: the deepest a pipeline nests a stage run
SEARCH_SKIP = {"checkpoints", "trl", "merged", "adapter", "model", "samples", "report", "less-datastores"}


def search_dirs(reuse: list[str], root: Path) -> list[Path]:
    """A ``reuse`` field as folders: ``auto`` = the folder the run folder ``root`` sits in."""
    return [Path(root).resolve().parent if d == "auto" else Path(d) for d in reuse]


def finished_runs(dirs: Iterable[str | Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each finished run folder (manifest ``complete``) under ``dirs``, walked :data:`SEARCH_DEPTH`
    deep in sorted order, with its manifest."""
    for top in map(Path, dirs):
        if not top.is_dir():
            continue
        base = len(top.resolve().parts)
        for here, subdirs, files in os.walk(top.resolve()):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in SEARCH_SKIP
                                and len(Path(here).parts) - base < SEARCH_DEPTH)
            if "manifest.json" in files:
                m = read_manifest(Path(here))
                if m and m.get("status") == "complete":
                    yield Path(here), m


def content_key(stage: str, version: int, config: Any, input_hashes: dict[str, str]) -> str:
    """:func:`run_key` with every path replaced by what it holds, so the same work done in another
    folder has the same key (issue 23: the audit reuses sweep and quickstart runs).

    - a data input or model labelled by its path: its hash alone (the label dropped; the hashes of
      path-labelled inputs enter as a sorted list);
    - a config value naming such an input: ``@`` + its hash; naming a folder that holds labelled
      inputs (a run folder read for its output file): ``@`` + those files' hashes -- as much of the
      folder as the run key itself hashes;
    - any other existing path in the config (with a separator): a finished run folder by its
      outputs' hashes, a file by its content, another folder by :func:`model_key` (file stats, so a
      copy never matches);
    - everything else (stage, VERSION, the other config fields, suite versions, shipped data) as
      in the run key.
    Stored in the manifest (``content_key``); :class:`sharpset.pipelines.reuse.Reuse` looks runs up by it."""
    paths = {str(Path(k).resolve()): v for k, v in input_hashes.items() if _is_path(k)}

    def held(value: str) -> str:
        p = Path(value).resolve()
        if str(p) in paths:
            return "@" + paths[str(p)]
        inside = sorted(h for k, h in paths.items() if Path(k).is_relative_to(p) and Path(k) != p)
        if inside:
            return "@" + ",".join(inside)
        m = read_manifest(p) if p.is_dir() else None
        if m and m.get("status") == "complete" and isinstance(m.get("outputs"), dict):
            return "@run:" + sha256_text(canonical_json(m["outputs"]))
        return "@" + (file_hash(p) if p.is_file() else model_key(str(p)))

    def sub(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        if isinstance(v, list):
            return [sub(x) for x in v]
        if isinstance(v, str) and ("/" in v or os.sep in v or str(Path(v).resolve()) in paths) and _is_path(v):
            return held(v)
        return v

    payload = {"stage": stage, "version": version, "config": sub(key_config(config)),
               "inputs": {k: v for k, v in input_hashes.items() if not _is_path(k)}, "data": sorted(paths.values())}
    return sha256_text(canonical_json(payload))


# Written before the manifest listed ``foreign`` entries: a folder from then is cleared by --force
# of its files (as that release did) and of the subfolders its runs are known to write (train).
_LEGACY_RUN_DIRS = ("checkpoints", "trl", "adapter", "merged", "model")


def _is_own_tmp(name: str) -> bool:
    """A temp sibling left by a killed :func:`sharpset.dataio.atomic_write` (``.NAME.PID.HEX.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


# lock files this process holds: resolved path -> [fd, holders]. A process may open its own run
# folder again (a pipeline, a test, a resumed stage in one session); another process may not.
_HELD: dict[str, list[int]] = {}


def _acquire_lock(folder: Path) -> str | None:
    """Take ``folder``'s advisory lock (``flock`` on :data:`LOCK`, non-blocking); the key that
    releases it, or None where there is no lock to take (a launched training rank other than 0: rank
    0 holds it for the run; a platform without ``fcntl``). A lock another process holds is a
    :class:`UserError` (exit 2) naming that process's pid: two runs of one folder would interleave
    their per-sample logs and outputs."""
    if os.environ.get("RANK", "0") != "0" and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    lock = folder / LOCK
    key = str(folder.resolve() / LOCK)
    if key in _HELD:
        _HELD[key][1] += 1
        return key
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            try:
                pid = lock.read_text(encoding="utf-8").strip() or "?"
            except OSError:
                pid = "?"
            raise UserError(f"{folder}: another sharpset process (pid {pid}) is running this run folder; "
                            "wait for it to finish (or stop it), then run this command again") from None
        try:  # a holder that released between our open and flock unlinked that file: lock the new one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[key] = [fd, 1]
    return key


def _release_lock(key: str | None) -> None:
    """Give back one hold of a lock; the last one removes the lock file (only if it is still ours)."""
    held = _HELD.get(key) if key else None
    if not held:
        return
    held[1] -= 1
    if held[1] > 0:
        return
    del _HELD[key]
    fd = held[0]
    with suppress(OSError):
        if os.fstat(fd).st_ino == os.stat(key).st_ino:
            os.unlink(key)
    os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class RunDir:
    """One run folder. Create with :meth:`open`, log samples, then :meth:`finish`."""

    SAMPLES = "samples.partial.jsonl"
    LOCK = LOCK
    OWN_FILES = ("config.yaml", "manifest.json", SAMPLES, LOCK)

    def __init__(self, path: Path, stage: str, version: int, config: Any, key: str,
                 seeds: dict[str, int], inputs: dict[str, str]):
        self.path = Path(path)
        self.stage, self.version, self.config, self.key = stage, version, config, key
        self.seeds, self.inputs = seeds, inputs
        self.manifest: dict[str, Any] = {}
        self._t0 = time.time()
        self._created: str | None = None  # "folder" or "files" when this open() started the run
        self._lock: str | None = None  # the advisory lock this object holds (released by finish/discard/close)
        self._content_key: str | None = None  # content_key() of this run (set by open)

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def open(cls, out: str | Path | None, stage: str, version: int, config: Any, *,
             seeds: dict[str, int] | None = None, inputs: Iterable[str | Path] = (),
             runs_root: str | Path = "runs", name: str | None = None, force: bool = False) -> "RunDir":
        hashes = input_hashes(config, inputs)
        key = run_key(stage, version, config, hashes)
        path = Path(out) if out else Path(runs_root) / f"{name or stage}-{key[:10]}"
        run = cls(path, stage, version, config, key, seeds or {}, hashes)
        run._content_key = content_key(stage, version, config, hashes)
        existed = path.exists()
        path.mkdir(parents=True, exist_ok=True)
        run._lock = _acquire_lock(path)  # before the manifest is read: one process decides what is here
        try:
            run._open(path, key, stage, version, config, hashes, existed, force)
        except BaseException:
            run.close()
            if not existed:
                shutil.rmtree(path, ignore_errors=True)
            raise
        if run.complete:  # a cache hit writes nothing: no lock to hold
            run.close()
        return run

    @classmethod
    def view(cls, path: str | Path, config: Any = None) -> "RunDir":
        """A finished run folder read as it is (another pipeline's, reused by content key): no lock, and
        nothing in it is written."""
        path = Path(path)
        man = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        run = cls(path, str(man.get("stage")), int(man.get("transform_version") or 0), config, str(man.get("key")),
                  man.get("seeds") or {}, man.get("inputs") or {})
        run.manifest = man
        return run

    def _open(self, path: Path, key: str, stage: str, version: int, config: Any, input_hashes: dict[str, str],
              existed: bool, force: bool) -> None:
        run, cls = self, type(self)
        man_path = path / "manifest.json"
        foreign = None
        if man_path.exists():
            try:
                old = json.loads(man_path.read_text(encoding="utf-8"))
                if not isinstance(old, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, OSError) as e:
                raise UserError(f"{man_path}: not a readable run manifest ({e}); choose another --out") from None
            if old.get("key") != key and _same_run_older_key(path, old, stage, version, config, input_hashes):
                old["key"] = key  # written by a release that keyed every config field: same run
            if old.get("key") != key and not force:
                raise UserError(
                    f"{path}: holds a different run (key {str(old.get('key', '?'))[:10]}, this one {key[:10]}); "
                    "choose another --out or pass --force to replace it")
            if force:
                foreign = cls._clear(path, old)
            else:
                run.manifest = old
                if not run.complete:  # resumed: (re)computed, as the content of its inputs is now
                    run.manifest["content_key"] = self._content_key
        if not run.manifest:
            if not existed:
                run._created = "folder"
            else:
                run._created = "files"
                if foreign is None:  # what was here before this run: never the run's to remove
                    foreign = sorted(p.name for p in path.iterdir()
                                     if p.name not in cls.OWN_FILES and not _is_own_tmp(p.name))
        if not run.manifest:
            run.manifest = {
                "key": key, "content_key": self._content_key, "stage": stage, "transform_version": version,
                "status": "running",
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "git": git_state(), "packages": package_versions(),
                "python": sys.version.split()[0], "platform": platform.platform(),
                "argv": sys.argv, "seeds": run.seeds, "inputs": input_hashes, "models": {},
                "foreign": foreign or [],
            }
            write_text(path / "config.yaml", yaml.safe_dump(config_dict(config), sort_keys=False))
            run.save_manifest()

    @classmethod
    def _clear(cls, path: Path, old: dict) -> list[str]:
        """Remove what the earlier run in ``path`` wrote (``--force``); returns the foreign entries kept."""
        if isinstance(old.get("foreign"), list):
            foreign = [str(f) for f in old["foreign"]]
            for entry in path.iterdir():
                if entry.name not in foreign and entry.name != LOCK:
                    _remove(entry)
            return foreign
        # a folder from before `foreign` was recorded: its files (what --force removed then), the
        # folders its manifest lists outputs in, and the folders training is known to write
        outputs = old.get("outputs") if isinstance(old.get("outputs"), dict) else {}
        dirs = set(_LEGACY_RUN_DIRS) | {Path(str(o)).parts[0] for o in outputs if Path(str(o)).parts}
        kept = []
        for entry in path.iterdir():
            if entry.name == LOCK:
                continue
            if entry.is_file() or entry.is_symlink() or entry.name in dirs:
                _remove(entry)
            else:
                kept.append(entry.name)
        return sorted(kept)

    def finished_inside(self) -> list[Path]:
        """Finished run folders inside this one (a pipeline's stage runs): work a discard must not lose."""
        out = []
        for man in self.path.rglob("manifest.json"):
            if man.parent == self.path:
                continue
            if (read_manifest(man.parent) or {}).get("status") == "complete":
                out.append(man.parent)
        return sorted(out)

    def discard(self) -> bool:
        """Take back a run this :meth:`open` started, when it stops on bad input before doing work;
        True when something was removed.

        A folder it created goes whole; in a folder that existed, only its entries (everything but
        the manifest's ``foreign``). A resumed run is never touched, nor is a pipeline folder that
        already holds a finished stage run (:meth:`finished_inside`: an audit stopped by bad input
        partway keeps what it computed, and the same command resumes it)."""
        if self._created is None or not self.path.exists() or self.finished_inside():
            self.close()
            return False
        if self._created == "folder":
            shutil.rmtree(self.path, ignore_errors=True)
            self.close()
            return True
        foreign = set(self.manifest.get("foreign") or [])
        for entry in self.path.iterdir():
            if entry.name not in foreign:
                _remove(entry)
        self.close()
        return True

    def close(self) -> None:
        """Give back this object's hold on the folder's lock (:meth:`finish` and :meth:`discard` do)."""
        _release_lock(self._lock)
        self._lock = None

    @property
    def complete(self) -> bool:
        return self.manifest.get("status") == "complete"

    def save_manifest(self) -> None:
        write_text(self.path / "manifest.json", json.dumps(self.manifest, indent=2, default=str))

    def record_model(self, role: str, info: dict[str, Any]) -> None:
        self.manifest.setdefault("models", {})[role] = info
        self.save_manifest()

    def finish(self, counts: dict[str, Any] | None = None, outputs: Iterable[str] = (),
               metrics: dict[str, Any] | None = None) -> None:
        self.manifest["status"] = "complete"
        self.manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.manifest["elapsed_s"] = round(self.manifest.get("elapsed_s", 0) + time.time() - self._t0, 2)
        if counts is not None:
            self.manifest["counts"] = counts
        if metrics is not None:
            self.manifest["metrics"] = metrics
        self.manifest["outputs"] = {o: file_hash(self.path / o) for o in outputs}
        self.save_manifest()
        self.close()

    # -- per-sample log ----------------------------------------------------------------------
    def done_samples(self) -> dict[str, dict]:
        """Samples already logged by an earlier (possibly killed) attempt, by key.

        The log is :func:`sharpset.dataio.append_jsonl`'s: a torn last line (a kill mid-write) is
        ignored here and cut off by the next append; a bad line elsewhere is an error naming it.
        """
        return {row["key"]: row for row in iter_jsonl(self.path / self.SAMPLES)}

    def log_sample(self, key: str, payload: dict[str, Any]) -> None:
        append_jsonl(self.path / self.SAMPLES, {"key": key, **payload})
