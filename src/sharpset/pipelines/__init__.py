"""End-to-end pipelines that recipes name (quickstart); each chains stage runs."""
