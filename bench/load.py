"""Benchmark: first (GGUF -> safetensors conversion) and cached load times of the embedded models.

    python bench/load.py                 # cached loads (converts first if the cache is empty)
    python bench/load.py --fresh         # also time a first conversion into a temporary cache

Each load runs in a fresh process (imports included in 'process', not in 'load'), so the figure is
what a user waits for. Target (issue 2): cached load of the aligned model <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch, transformers  # noqa: F401,E401 -- library import time, reported apart from the load
from sharpset.models import load_model
t1 = time.perf_counter()
model, tok = load_model(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1}))
"""


def time_load(name: str, env: dict) -> dict:
    t = subprocess.run([sys.executable, "-c", CHILD, name], capture_output=True, text=True, env=env, check=True)
    return json.loads(t.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2-135m-instruct,gemma3-270m")
    ap.add_argument("--fresh", action="store_true", help="also time the first conversion into an empty cache")
    args = ap.parse_args()
    env = dict(os.environ)
    rows = []
    for name in args.models.split(","):
        if args.fresh:
            with tempfile.TemporaryDirectory() as d:
                e = dict(env, SHARPSET_CACHE=d)
                first = time_load(name, e)
                cached = time_load(name, e)
        else:
            time_load(name, env)  # make sure it is converted
            first, cached = None, time_load(name, env)
        rows.append((name, first, cached))
    print(f"{'model':24s} {'first load s':>13s} {'cached load s':>14s} {'import torch+transformers s':>28s}")
    for name, first, cached in rows:
        f = f"{first['load_s']:.2f}" if first else "-"
        print(f"{name:24s} {f:>13s} {cached['load_s']:>14.2f} {cached['import_s']:>28.2f}")
    aligned = [c for n, _, c in rows if n == "smollm2-135m-instruct"]
    if aligned:
        a = aligned[0]
        print(f"load average now {os.getloadavg()[0]:.2f} (2 cores; figures inflate under load)")
        print(f"cached_load_s(smollm2-135m-instruct) = {a['load_s']:.2f}  (target <= 5; "
              f"with library imports {a['load_s'] + a['import_s']:.2f})")


if __name__ == "__main__":
    main()
