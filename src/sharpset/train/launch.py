"""``sharpset train --launch accelerate``: re-run the same command under ``accelerate launch``.

The CLI re-invokes itself as ``python -m accelerate.commands.launch --config_file CFG
[--num_processes N] --main_process_port PORT -m sharpset <the same arguments>`` with
``SHARPSET_LAUNCHED=accelerate`` in the environment, so each launched process runs the ordinary
`train` stage, and train/distributed.py turns it into one data-parallel rank. The run folder,
run key and outputs are those of the single-process command (the launch flags are not config
fields), so the same command resumes either way.

Shipped configs (``--accelerate-config NAME``; or give a path to your own accelerate config):
``cpu-2proc`` (2 CPU processes, gloo; the default without a GPU), ``cpu-2proc-fsdp`` (the same,
FSDP2-sharded), ``ddp`` (one process per GPU; the default with one), ``fsdp`` (FSDP2 over the GPUs;
train/distributed.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from ..errors import UserError

CONFIG_DIR = Path(__file__).with_name("accelerate")
LAUNCHERS = ("accelerate",)


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_path(name_or_path: str | None) -> Path:
    """A shipped config by name, or a file path; default cpu-2proc without CUDA, else ddp."""
    if not name_or_path:
        import torch

        name_or_path = "ddp" if torch.cuda.is_available() else "cpu-2proc"
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml", ".json") or p.exists():
        if not p.exists():
            raise UserError(f"{p}: --accelerate-config: no such file")
        return p
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if not shipped.exists():
        raise UserError(f"--accelerate-config: unknown config {name_or_path!r}; shipped: {', '.join(shipped_configs())} "
                        "(or give a path to an accelerate config file)")
    return shipped


def _free_port() -> int:
    # The default 29500 collides when two launches share a machine; ask the OS for a free one.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(argv: list[str], launcher: str, config: str | None, num_processes: int | None) -> list[str]:
    if launcher not in LAUNCHERS:
        raise UserError(f"--launch: must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if num_processes is not None and num_processes < 1:
        raise UserError(f"--num-processes: must be >= 1, got {num_processes}")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_path(config))]
    if num_processes:
        cmd += ["--num_processes", str(num_processes)]
    cmd += ["--main_process_port", str(_free_port()), "-m", "sharpset", *argv]
    return cmd


def relaunch(argv: list[str], launcher: str, config: str | None, num_processes: int | None) -> int:
    """Run the command under the launcher; returns its exit code."""
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise UserError("--launch accelerate: the accelerate package is not installed") from None
    cmd = launch_command(argv, launcher, config, num_processes)
    env = dict(os.environ, SHARPSET_LAUNCHED=launcher)
    print("launching: " + " ".join(cmd[1:]), file=sys.stderr)
    return subprocess.run(cmd, env=env).returncode
