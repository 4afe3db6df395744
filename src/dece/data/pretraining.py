"""The corpora a tiny model can be pretrained on before an experiment fine-tunes it (``[pretrain] corpus``).

Each is ``(n, seed, keep) -> rows``: ``n`` rows drawn with ``seed``, each accepted by ``keep``, the leak
guard of :mod:`dece.experiments.base_model` (no row near a row of the experiment's dataset).

* ``builtin``: clean built-in Lyra-style rows from a seed space no built-in split draws from (disjoint by
  construction, so ``keep`` is not asked; every cached base of the built-in corpus stays valid).
* ``python_functions``: (function -> docstring) pairs of the Python code installed on the machine, in the
  code-docstring-corpus encoding (:mod:`dece.data.python_functions`).
* ``python_repair``: (edited function -> function) pairs of the same code abstracted as Bugs2Fix abstracts
  Java, for code-to-code tasks (:mod:`dece.data.python_repair`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from dece.data.builtin import pretraining_corpus
from dece.data.python_functions import python_function_rows, sources_fingerprint
from dece.data.python_repair import repair_rows, repair_sources_fingerprint
from dece.data.records import Example
from dece.registry import Registry

Keep = Callable[[Example], bool]


@dataclass(frozen=True)
class PretrainingCorpus:
    """``build(n, seed, keep)``: the rows. ``sources``: a fingerprint of what the rows are read from (files,
    their sizes and times), for corpora whose rows depend on the machine and take a while to build, so that
    they can be kept on disk; None for a corpus that needs no leak guard (``keep`` is then not asked)."""

    build: Callable[[int, int, Keep], list[Example]]
    sources: Callable[[], str] | None = None

    @property
    def guarded(self) -> bool:
        """Whether rows may come near an experiment's rows, so that the leak guard must read them."""
        return self.sources is not None


PRETRAINING_CORPORA: Registry[PretrainingCorpus] = Registry("pretraining corpus")
PRETRAINING_CORPORA.add("builtin", PretrainingCorpus(lambda n, seed, keep: pretraining_corpus(n, seed)))
PRETRAINING_CORPORA.add("python_functions", PretrainingCorpus(
    lambda n, seed, keep: python_function_rows(n, seed, keep), sources_fingerprint))
PRETRAINING_CORPORA.add("python_repair", PretrainingCorpus(
    lambda n, seed, keep: repair_rows(n, seed, keep), repair_sources_fingerprint))
