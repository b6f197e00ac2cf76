"""One module per evaluation suite, each exposing ``SUITE`` (see :mod:`sharpset.evaluate.suite`)."""
