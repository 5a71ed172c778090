"""What a screening service runs: request inputs, predictors per model kind, the scorer, the
pyfunc shell (``screener.py``, logged from code), the signature and ONNX sessions.

It imports plain networks (:mod:`ipguard.nets`) and preprocessing, never Lightning, Hydra,
pandera or the jobs (checked by import-linter in ``make lint``).
"""
