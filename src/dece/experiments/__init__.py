"""Experiments: the TOML config, the runner, the run folder and the results table."""

from dece.experiments.config import ExperimentConfig, config_from_dict, dump_config, load_config
from dece.experiments.runner import run_experiment

__all__ = ["ExperimentConfig", "config_from_dict", "dump_config", "load_config", "run_experiment"]
