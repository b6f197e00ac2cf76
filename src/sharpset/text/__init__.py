"""Text features shared by stages and suites: response shape (shape.py), shape specs (spec.py)."""
