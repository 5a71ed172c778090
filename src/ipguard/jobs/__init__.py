"""The jobs: ``train``, ``evaluate``, ``export`` and ``promote`` as plain functions.

Each takes a composed config (``ipguard.config.compose``) and returns a result whose
``summary_line()`` is the one line its CLI prints; ``cli.py`` is only the Hydra entry points
over them. Shared run plumbing (output folder, tracking store, provenance) is in :mod:`.run`.
The jobs sit on top: nothing else in ipguard imports them.
"""
