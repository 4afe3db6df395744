"""Defenses DeCE is compared with, each a registered component that an experiment arm can name.

    data      bki, spectral_signature, activation_clustering   remove training rows, then train
              dece_filter                                       (rows a DeCE arm never learns)
              dedup, near_dedup                                 (repeated / near-repeated (source, target) pairs)
    input     onion, paraphrase                                 rewrite test inputs before generation
    training  moderate_fitting                                  train differently (10x lower lr)

>>> d = get_defense("onion", threshold=0.2)
>>> d.fit(clean_train_sources).transform(test_sources)
>>> sel = get_defense("spectral_signature", rate=0.05).select(rows, DataContext(encode=encoder))
>>> detection_report(sel.ids, rows)   # precision / recall / F1 of the removed rows

The loss-based baselines (``label_smoothing``, ``gce``, ``in_trust``) live in :mod:`dece.losses`.
"""

from dece.defenses import (  # noqa: F401  (registration)
    activation_clustering,
    bki,
    dece_filter,
    dedup,
    moderate_fitting,
    near_dedup,
    onion,
    paraphrase,
    spectral,
)
from dece.defenses.base import (
    DEFENSES,
    KINDS,
    DataContext,
    DataDefense,
    Defense,
    InputDefense,
    RepresentationDefense,
    Selection,
    TrainingDefense,
    get_defense,
)
from dece.defenses.ngram import NgramLM
from dece.defenses.report import detection_report
from dece.defenses.representations import encode_representations, encode_texts

__all__ = [
    "DEFENSES",
    "KINDS",
    "DataContext",
    "DataDefense",
    "Defense",
    "InputDefense",
    "NgramLM",
    "RepresentationDefense",
    "Selection",
    "TrainingDefense",
    "detection_report",
    "encode_representations",
    "encode_texts",
    "get_defense",
]
