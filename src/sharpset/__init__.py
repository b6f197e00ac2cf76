"""sharpset: small, sharply targeted alignment example sets -- build, train/steer, measure.

Layers, imports flowing one way (README "Layout"): core (cli, config, errors, run, records, dataio),
shared (stage, stats, embed, judge, invariance, text/, models/, engine/, train/), stages/ (one per
pipeline step, never importing each other), evaluate/, pipelines/.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

# Modules of the first release that moved (issue 11). Their old names keep working for a release:
# importing one warns and hands back the new module (the same object, so monkeypatching either name
# patches both).
MOVED = {
    "sharpset.synth": "sharpset.stages.synth",
    "sharpset.tag": "sharpset.stages.tag",
    "sharpset.dedup": "sharpset.stages.dedup",
    "sharpset.curate": "sharpset.stages.curate",
    "sharpset.controls": "sharpset.stages.curate.controls",
    "sharpset.restyle": "sharpset.stages.restyle",
    "sharpset.wrap": "sharpset.stages.wrap",
    "sharpset.shape": "sharpset.text.shape",
    "sharpset.spec": "sharpset.text.spec",
    "sharpset.quickstart": "sharpset.pipelines.quickstart",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module):  # the module is already executed under its new name
        pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
