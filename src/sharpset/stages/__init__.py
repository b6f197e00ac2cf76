"""Pipeline stages, one module (or package) each: synth -> tag -> dedup -> curate (+controls) ->
restyle -> wrap. Each follows the stage protocol of :mod:`sharpset.stage` and imports shared code
only, never another stage (tests/test_layout.py)."""
