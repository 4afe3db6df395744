"""dece: defend code language models against data-poisoning backdoors.

The core is the Deceptive Cross-Entropy loss of Yang et al. (TOSEM 2026), see :mod:`dece.losses`.
"""

__version__ = "0.1.0"
