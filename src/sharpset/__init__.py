"""sharpset: small, sharply targeted alignment example sets -- build, train/steer, measure.

Stages (one module each): models/ (registry, loading, chat profiles), engine/ (generation),
records (schema, validation, I/O), run (run folders, manifest, cache, resume), cli (thin).
"""

__version__ = "0.1.0"
