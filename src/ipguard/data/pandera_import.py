"""pandera, imported without a warning the user cannot act on.

With PySpark installed (the ``spark`` extra, for ``ipguard.jobs.spark_score``) pandera imports
``pyspark.pandas`` for its Spark backend, and that warns on import that PySpark does not yet
support pandas 3 -- in every process that validates a manifest, Spark or not. ipguard's
validation runs on pandas alone, so the warning is silenced for that import only.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    import pandera.pandas as pa

__all__ = ["pa"]
