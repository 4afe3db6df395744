"""Experiments: the TOML config, the runner, the run folder and the results table.

Names are imported on first use (PEP 562): the config schema (:mod:`dece.experiments.config`) loads
without torch or transformers; the runner brings them."""

from __future__ import annotations

from dece.lazy import lazy_exports

_EXPORTS = {
    "ExperimentConfig": "dece.experiments.config",
    "config_from_dict": "dece.experiments.config",
    "dump_config": "dece.experiments.config",
    "load_config": "dece.experiments.config",
    "run_experiment": "dece.experiments.runner",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
