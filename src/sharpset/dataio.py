"""Reading and writing record files: JSONL, parquet, `datasets` folders; rejects; resumable logs.

- :func:`read_records` validates every row and reports ``path:line: field: problem``
  (:class:`~sharpset.records.RecordError`); ``on_error="skip"`` collects rejects instead. Every row
  it returns has an ``id`` (a row without one gets its content id, issue 10) and no two share one: a
  later row repeating an earlier id is bad input (``id: duplicate of line N``), since every stage
  keys its per-sample log, resume and results by id -- two rows under one id would get one result.
- :func:`write_records` / :func:`write_rejected` are atomic: a temp sibling, then ``os.replace``
  (folders: a temp folder, then rename; :func:`atomic_dir` for any folder, e.g. a model export).
  A row that fails to serialise leaves nothing behind.
- :func:`append_jsonl` / :func:`iter_jsonl` are for per-sample logs a killed run resumes from.

Columnar formats (parquet, datasets) round-trip rows exactly. pyarrow gives every row every
column, turns a row's missing key into ``None`` and coerces mixed types (``1`` next to ``2.5``
reads back as ``1.0``), so on write each column is converted natively only when converting it back
gives the identical values; otherwise it is stored as a string column of JSON text. Which
columns are JSON text, and which rows lacked which key, is recorded (parquet: schema metadata
``sharpset``; datasets folder: a ``sharpset.json`` sidecar) and undone on read. Files without that
metadata (written by other tools) are read as pyarrow gives them. Key order within a row is not
kept by columnar formats (columns follow first appearance); JSONL keeps it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from .records import Counts, RecordError, content_id, detect_kind, type_name, validate

__all__ = ["ReadResult", "read_records", "write_records", "write_rejected", "append_jsonl",
           "iter_jsonl", "atomic_dir", "Counts", "RecordError"]

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
META_KEY = b"sharpset"  # parquet schema metadata key
META_FILE = "sharpset.json"  # sidecar in datasets folders (datasets drops custom schema metadata)
_DATASETS_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass
class ReadResult:
    rows: list[dict]
    rejected: list[dict]  # {"path", "line", "field", "problem", "row", ["text"], ["other_problems"]}
    n_read: int  # rows seen (blank JSONL lines are not rows): len(rows) + len(rejected)
    path: str = ""  # the file (or datasets folder) the rows came from, for messages naming a row
    lines: list[int] = field(default_factory=list)  # the line (row number) of each of ``rows``

    def where(self, i: int) -> str:
        """``path:line`` of ``rows[i]``, the prefix of a message about that row."""
        return f"{self.path}:{self.lines[i]}" if i < len(self.lines) else self.path

    def counts(self, written: int | None = None, dropped: int = 0) -> Counts:
        """Counts for a stage that read this; ``written`` defaults to every good row."""
        return Counts(read=self.n_read, written=len(self.rows) if written is None else written,
                      dropped=dropped, rejected=len(self.rejected))


# ---------------------------------------------------------------- parsing


class _DuplicateKey(ValueError):
    """json.loads keeps the last of repeated keys silently; a record file must not rely on that."""


def _object_no_dupes(pairs):
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen = set()
        raise _DuplicateKey(f"duplicate key {next(k for k, _ in pairs if k in seen or seen.add(k))!r}")
    return obj


def _parse_line(raw: bytes):
    """``(value, None)`` or ``(None, problem)`` for one JSONL line (without its newline)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"not valid UTF-8 (byte {e.start + 1})"
    try:
        return json.loads(text, object_pairs_hook=_object_no_dupes), None
    except _DuplicateKey as e:
        return None, str(e)
    except json.JSONDecodeError as e:
        return None, f"invalid JSON: {e.msg} (column {e.colno})"


def _jsonl_lines(path: Path):
    """``(line_no, raw, ends_with_newline)`` for each non-blank line; numbers count blank lines."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            complete = raw.endswith(b"\n")
            raw = raw.rstrip(b"\r\n")
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 BOM
                raw = raw[3:]
            if raw.strip():
                yield line_no, raw, complete


# ---------------------------------------------------------------- columnar encoding


def _same(a, b) -> bool:
    """Equal *and* of the same types throughout (``1`` is not ``1.0``, missing is not ``None``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and a != a:  # NaN
        return b != b
    return a == b


def _storable(t) -> bool:
    """Parquet cannot store a struct with no fields (what ``{}`` infers to), at any depth."""
    import pyarrow as pa

    if pa.types.is_struct(t):
        return t.num_fields > 0 and all(_storable(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _storable(t.value_type)
    return True


def _encode_table(rows: list[dict], path: Path):
    """``(pyarrow.Table, meta)`` that :func:`_decode_rows` turns back into ``rows`` exactly."""
    import pyarrow as pa

    columns = list(dict.fromkeys(k for row in rows for k in row))
    meta = {"version": 1, "json_columns": [], "absent": {}}
    arrays = []
    for col in columns:
        absent = [i for i, row in enumerate(rows) if col not in row]
        values = [row.get(col) for row in rows]
        try:
            arr = pa.array(values)
            native = _storable(arr.type) and all(map(_same, values, arr.to_pylist()))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            native = False
        if not native:
            texts = []
            for i, (row, value) in enumerate(zip(rows, values)):
                try:
                    texts.append(json.dumps(value, ensure_ascii=False) if col in row else None)
                except (TypeError, ValueError) as e:
                    raise RecordError(path, i + 1, col, f"cannot be serialised: {e}", row=row) from e
            arr = pa.array(texts, pa.string())
            meta["json_columns"].append(col)
        if absent:
            meta["absent"][col] = absent
        arrays.append(arr)
    if not columns:  # arrow has no zero-column tables with rows, datasets none at all: a placeholder
        columns, arrays = ["_sharpset_empty"], [pa.nulls(len(rows))]
        meta["absent"]["_sharpset_empty"] = list(range(len(rows)))
    return pa.Table.from_arrays(arrays, names=columns), meta


def _decode_rows(table, meta: dict | None) -> list[dict]:
    rows = table.to_pylist()
    if not meta:
        return rows
    for col in meta.get("json_columns", []):
        for row in rows:
            if row[col] is not None:
                row[col] = json.loads(row[col])
    for col, indices in meta.get("absent", {}).items():
        for i in indices:
            del rows[i][col]
    return rows


# ---------------------------------------------------------------- reading


def _is_datasets_dir(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for m in _DATASETS_MARKERS)


def _run_folder_output(path: Path) -> Path | None:
    """A sharpset run folder reads as its first listed output (``manifest.json`` ``outputs``)."""
    man = path / "manifest.json"
    if not man.is_file():
        return None
    try:
        outputs = json.loads(man.read_text(encoding="utf-8")).get("outputs") or {}
    except (json.JSONDecodeError, OSError, AttributeError):
        return None
    if not outputs:
        raise RecordError(path, None, "<file>", "run folder has no outputs yet (an unfinished run? "
                                                "re-run its command to resume it)")
    first = next(iter(outputs))
    target = path / str(first)
    # an outputs entry names a file inside the folder; never one elsewhere (`../x`, `/etc/x`, a link out)
    if Path(str(first)).is_absolute() or not target.resolve().is_relative_to(path.resolve()):
        raise RecordError(man, None, "outputs", f"{first!r} points outside the run folder {path}")
    return target


def _resolve(path: Path) -> tuple[str, Path]:
    """``(format, source)`` for a file, a datasets folder, or a folder holding one data file."""
    if path.is_dir():
        if _is_datasets_dir(path):
            return "datasets", path
        if (path / "data.jsonl").is_file():
            return "jsonl", path / "data.jsonl"
        main = _run_folder_output(path)
        if main is not None:
            return _resolve(main)
        found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                       and p.suffix in (".jsonl", ".parquet") and p.name != "rejected.jsonl")
        if len(found) != 1:
            what = "no data file" if not found else "several data files (" + ", ".join(p.name for p in found) + ")"
            raise RecordError(path, None, "<file>",
                              f"folder holds {what}; expected data.jsonl, one *.jsonl / *.parquet, "
                              "or a datasets save_to_disk folder")
        path = found[0]
    elif not path.exists():
        raise RecordError(path, None, "<file>", "no such file or folder")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl", path
    if suffix == ".parquet":
        return "parquet", path
    raise RecordError(path, None, "<file>", f"unsupported file type {suffix or '(none)'!r}; "
                                            "expected .jsonl, .parquet or a datasets folder")


def _load_columnar(fmt: str, src: Path) -> list[dict]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(src)
        except Exception as e:  # noqa: BLE001 -- any pyarrow failure means an unreadable file
            raise RecordError(src, None, "<parquet>", f"cannot read: {e}") from e
        raw = (table.schema.metadata or {}).get(META_KEY)
        return _decode_rows(table, json.loads(raw) if raw else None)
    import datasets

    try:
        ds = datasets.load_from_disk(str(src))
    except Exception as e:  # noqa: BLE001
        raise RecordError(src, None, "<datasets>", f"cannot load: {e}") from e
    if not isinstance(ds, datasets.Dataset):
        raise RecordError(src, None, "<datasets>",
                          f"holds several splits ({', '.join(ds)}); point at one split's folder")
    sidecar = src / META_FILE
    meta = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else None
    return _decode_rows(ds.with_format("arrow")[:], meta)


def _source(fmt: str, src: Path):
    """``(line, value, problem, raw)`` per row; ``problem`` (and the JSONL ``raw`` bytes) are set
    when the row is not parseable."""
    if fmt == "jsonl":
        for line_no, raw, _ in _jsonl_lines(src):
            value, problem = _parse_line(raw)
            yield line_no, value, problem, raw
    else:
        for i, row in enumerate(_load_columnar(fmt, src)):
            yield i + 1, row, None, None


def read_records(path, kind: str | None = None, *, on_error: str = "raise",
                 require_response: bool = True, strict_ids: bool = False) -> ReadResult:
    """Read and validate every row of ``path`` (.jsonl, .parquet, a datasets folder, or a folder
    holding one data file).

    ``kind=None`` takes the kind of the first row whose kind can be told and holds every row to
    it. ``on_error="raise"`` raises the first :class:`RecordError`; ``"skip"`` returns good rows
    and one reject per bad row (first problem in ``field``/``problem``, the rest in
    ``other_problems``). Blank JSONL lines are skipped but still count for line numbers.

    Ids: a good row without ``id`` gets ``id = content_id(row)`` (placed first); a good row whose
    id an earlier good row already has is bad (``id: duplicate of line N``).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    fmt, src = _resolve(Path(path))
    rows, lines, rejected, n_read = [], [], [], 0
    first_line: dict[str, int] = {}  # id -> line of the good row that has it
    for line, value, problem, raw in _source(fmt, src):
        n_read += 1
        if problem is not None:
            problems = [("<json>", problem)]
        else:
            if kind is None:
                kind = detect_kind(value)
            problems = validate(value, kind, require_response=require_response, strict_ids=strict_ids)
        if not problems:
            if not value.get("id"):
                value = {"id": content_id(value, kind), **{k: v for k, v in value.items() if k != "id"}}
            seen = first_line.get(value["id"])
            if seen is None:
                first_line[value["id"]] = line
                rows.append(value)
                lines.append(line)
                continue
            problems = [("id", f"duplicate of line {seen}")]
        if on_error == "raise":
            raise RecordError(src, line, *problems[0], row=value)
        entry = {"path": str(src), "line": line, "field": problems[0][0], "problem": problems[0][1],
                 "row": value}
        if problem is not None:
            entry["text"] = raw.decode("utf-8", errors="replace")
        if len(problems) > 1:
            entry["other_problems"] = [f"{f}: {p}" for f, p in problems[1:]]
        rejected.append(entry)
    return ReadResult(rows=rows, rejected=rejected, n_read=n_read, path=str(src), lines=lines)


# ---------------------------------------------------------------- writing


def _tmp_sibling(path: Path, tag: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{tag}")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: not every platform can fsync a folder)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path, write) -> Path:
    """Run ``write(binary_file)`` on a temp sibling, fsync, then ``os.replace`` onto ``path``.

    The one atomic writer: records, reports, manifests and configs all go through it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        # os.open with 0o666 honours the umask (mkstemp would leave the result 0600)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


_atomic_write = atomic_write  # the first release's private name


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with suppress(OSError):
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    _fsync_dir(folder)


def _swap_in(tmp: Path, path: Path) -> None:
    """Put the finished folder ``tmp`` at ``path``. Two renames when ``path`` exists: between them
    ``path`` is briefly absent and the old data sits in a ``.old`` sibling, put back on failure."""
    if path.exists():
        old = _tmp_sibling(path, "old")
        os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, path)


@contextmanager
def atomic_dir(path):
    """Write a folder atomically: yields a temp folder beside ``path`` (``.NAME.PID.HEX.tmp``) to
    fill; when the block ends without an error it replaces ``path`` by rename (an existing ``path``
    is first renamed aside to ``.NAME.PID.HEX.old``, then removed), on an error it is removed. A
    kill at any point leaves the old folder, or none, and temp siblings -- never a half-written
    ``path`` (:func:`clean_dir_temps` removes the siblings on the next write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)


def clean_dir_temps(path) -> None:
    """Remove the temp siblings a killed :func:`atomic_dir` for ``path`` left (``.NAME.*.tmp|old``)."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for p in path.parent.glob(f".{path.name}.*"):
        if p.name.endswith((".tmp", ".old")) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.endswith((".tmp", ".old")):
            p.unlink(missing_ok=True)


def write_text(path, text: str) -> Path:
    """Write a text file atomically (UTF-8)."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON (non-ASCII kept, a final newline) atomically."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def _jsonl_writer(rows, path: Path, default=None):
    def write(f):
        for i, row in enumerate(rows):
            try:
                line = json.dumps(row, ensure_ascii=False, default=default)
            except (TypeError, ValueError) as e:
                raise RecordError(path, i + 1, "<row>", f"cannot be serialised to JSON: {e}", row=row) from e
            f.write(line.encode("utf-8") + b"\n")
    return write


def _write_datasets_dir(table, meta: dict, path: Path) -> Path:
    import datasets

    if path.exists() and not _is_datasets_dir(path) and not (path.is_dir() and not any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not a datasets folder; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    bars_were_on = not datasets.are_progress_bars_disabled()
    try:
        datasets.disable_progress_bars()
        # an empty dataset saved in 0 shards cannot be loaded back (datasets 5.2): force one
        datasets.Dataset(table).save_to_disk(str(tmp), num_shards=1 if not table.num_rows else None)
        (tmp / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bars_were_on:  # progress bars are global state: put them back as they were
            datasets.enable_progress_bars()
    _fsync_dir(path.parent)
    return path


def write_records(rows, path, *, format: str | None = None) -> Path:  # noqa: A002 -- the flag's name
    """Write rows atomically to ``path``: ``.jsonl`` (JSON, ``ensure_ascii=False``, keys in
    insertion order), ``.parquet``, or a folder with ``format="datasets"`` (``save_to_disk``).

    Nothing is half-written: a failure (e.g. a row that cannot be serialised, which raises
    :class:`RecordError`) leaves any existing file at ``path`` untouched and no temp files.
    """
    path = Path(path)
    if format is None:
        suffix = path.suffix.lower()
        format = ("jsonl" if suffix in JSONL_SUFFIXES else "parquet" if suffix == ".parquet"
                  else "datasets" if _is_datasets_dir(path) else None)
        if format is None:
            raise ValueError(f"cannot tell the output format from {path}; use a .jsonl or .parquet "
                             "name or format='datasets'")
    if format == "jsonl":
        return atomic_write(path, _jsonl_writer(rows, path))
    if format not in ("parquet", "datasets"):
        raise ValueError(f"format must be 'jsonl', 'parquet' or 'datasets', not {format!r}")
    table, meta = _encode_table(list(rows), path)
    if format == "datasets":
        return _write_datasets_dir(table, meta, path)
    import pyarrow.parquet as pq

    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode("utf-8")})
    return atomic_write(path, lambda f: pq.write_table(table, f))


def write_rejected(rejected, path) -> Path:
    """Write reject entries (from :func:`read_records`) atomically as JSONL; a folder gets
    ``rejected.jsonl`` inside it. Values JSON cannot hold are written as their ``str``."""
    path = Path(path)
    if path.is_dir():
        path = path / "rejected.jsonl"
    return atomic_write(path, _jsonl_writer(rejected, path, default=str))


# ---------------------------------------------------------------- resumable logs


def append_jsonl(path, row: dict) -> None:
    """Append one row as a line with one ``write`` on an ``O_APPEND`` descriptor, then fsync.

    ``O_APPEND`` puts every write at the end of the file as it is then, so a line is never written
    over another's (a run folder's lock keeps a second process out; this keeps the log whole even
    without it). A last line without its newline is either the partial trace of a kill mid-write,
    which is cut off first (:func:`iter_jsonl` ignores it too), or a whole row, which gets its
    newline: the new line never fuses with it.
    """
    if not isinstance(row, dict):
        raise TypeError(f"append_jsonl takes a dict, not {type_name(row)}")
    data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")  # fail before touching the file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            end = size
            while end > 0:  # scan back for the last newline
                start = max(0, end - 65536)
                cut = os.pread(fd, end - start, start).rfind(b"\n")
                end = start + cut + 1 if cut >= 0 else start
                if cut >= 0:
                    break
            tail = os.pread(fd, size - end, end).rstrip(b"\r")
            if tail.strip() and _parse_line(tail)[1] is None:
                data = b"\n" + data
            else:
                os.ftruncate(fd, end)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def iter_jsonl(path, *, missing_ok: bool = True):
    """Yield each row (a dict) of a JSONL log; a missing file yields nothing if ``missing_ok``.

    A last line without its newline that does not parse is the trace of a kill mid-write and is
    ignored; any other bad line raises :class:`RecordError`.
    """
    path = Path(path)
    if missing_ok and not path.exists():
        return
    for line_no, raw, complete in _jsonl_lines(path):
        value, problem = _parse_line(raw)
        if problem is not None:
            if not complete:  # only the final line can lack its newline
                return
            raise RecordError(path, line_no, "<json>", problem)
        if not isinstance(value, dict):
            raise RecordError(path, line_no, "<row>", f"expected a JSON object, got {type_name(value)}")
        yield value
