"""Text normalisation and text features that see through obfuscated brand names.

``from ipguard.text import normalize`` is the function (:func:`.normalization.normalize`);
the module that defines it is :mod:`ipguard.text.normalization`.
"""

import sys

from ipguard.text import normalization
from ipguard.text.normalization import model_text, normalize, normalize_steps, text_of

# ipguard <= 0.5 named the module ``ipguard.text.normalize``: ``from ipguard.text.normalize
# import model_text`` keeps working through this alias, which is registered without becoming
# an attribute of the package, so it never hides the function again.
sys.modules.setdefault(f"{__name__}.normalize", normalization)

__all__ = ["model_text", "normalize", "normalize_steps", "text_of"]
