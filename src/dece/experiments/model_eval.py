"""Scoring a model the experiment did not train: the config's clean and triggered test sets, generation
as its ``[eval]`` says, its metrics, ASR and FTR, exactly as an arm is scored (``dece evaluate``).

The model is a saved folder (a Hugging Face ``save_pretrained`` folder with its tokenizer, e.g. an
arm's ``arms/ARM/model`` or a model fine-tuned elsewhere; a PEFT adapter folder on the config's base
model) or an ``hf:`` checkpoint name. Nothing is trained; the data is loaded and poisoned as ``dece run``
would (deterministic), so the numbers compare with the run's arms. An input defense (e.g. ONION) may
rewrite the test inputs first, as in an input-defense arm.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import torch

from dece.errors import ConfigError
from dece.experiments.arm import evaluate_arm, load_trained
from dece.experiments.base_model import base_model_spec
from dece.defenses.base import InputDefense
from dece.experiments.config import ArmConfig, ExperimentConfig, check_model_source, dump_config
from dece.experiments.data_prep import prepare_data
from dece.experiments.defended import defense_of, prepare_input_defense
from dece.experiments.store import write_json_atomic, write_text_atomic
from dece.models import build_model
from dece.training.distributed import is_main


def default_output_dir(cfg: ExperimentConfig, model: str, defense: ArmConfig | None = None) -> Path:
    """``OUTPUT_DIR/evaluate/NAME``: NAME is the model folder's name (its parent's for ``.../model``), with
    ``+DEFENSE`` behind an input defense, so a defended score never overwrites the undefended one."""
    path = Path(model.removeprefix("hf:"))
    name = (path.parent.name if path.name == "model" and path.parent.name else path.name) or "model"
    return Path(cfg.output_dir) / "evaluate" / (f"{name}+{defense.defense}" if defense is not None else name)


def load_model(cfg: ExperimentConfig, model: str, data, out_dir: Path, log: Callable[[str], None]):
    """``(model, tokenizer, is_encoder_decoder)`` of ``model`` (module docstring)."""
    path = Path(model)
    if path.is_dir():
        if (path / "adapter_config.json").exists():  # adapters on the config's base model
            return load_trained(base_model_spec(cfg, data.clean_train, out_dir, log), path)
        if not (path / "config.json").exists():
            raise ConfigError(f"{path}: no config.json (nor adapter_config.json): not a saved model folder")
        return load_trained(cfg.model, path)
    if model.startswith("hf:"):
        spec = dataclasses.replace(cfg.model, name=model, lora=None)
        check_model_source(spec)  # not cached and no network: named here, not after the hub client's retries
        return build_model(spec)
    raise ConfigError(f"model {model!r}: not a folder; give a saved model folder or an hf: checkpoint name")


def input_defense_arm(defense: str, params: dict[str, Any] | None = None) -> ArmConfig:
    """The arm that stands for ``defense`` in front of an evaluated model: an input defense, validated."""
    arm = ArmConfig(name="evaluate", defense=defense, defense_params=dict(params or {}))
    arm.validate("defense")
    if not isinstance(defense_of(arm), InputDefense):
        raise ConfigError(f"defense {defense!r} is a {defense_of(arm).kind} defense; only input defenses act on a "
                          "trained model (train with the others: an arm of dece run)")
    return arm


def evaluate_model(cfg: ExperimentConfig, model: str, out_dir: Path | None = None,
                   log: Callable[[str], None] = print, defense: ArmConfig | None = None) -> dict[str, Any]:
    """Scores ``model`` on ``cfg``'s test sets, behind ``defense`` (:func:`input_defense_arm`) if given;
    writes ``metrics.json``, ``predictions.jsonl`` and the resolved ``config.toml`` into ``out_dir``
    (default :func:`default_output_dir`) and returns the metrics."""
    out_dir = Path(out_dir) if out_dir is not None else default_output_dir(cfg, model, defense)
    if cfg.train.threads:  # as an arm is run: a tiny model on a busy machine is fastest on one thread
        torch.set_num_threads(cfg.train.threads)
    data = prepare_data(cfg)
    net, tokenizer, is_enc_dec = load_model(cfg, model, data, out_dir, log)
    defend, report = prepare_input_defense(defense, data, log) if defense is not None else (None, None)
    log(f"evaluating {model} on {len(data.clean_test)} clean"
        + (f" + {len(data.triggered_test)} triggered" if data.triggered_test is not None else "") + " test rows")
    metrics = evaluate_arm(cfg, net, tokenizer, is_enc_dec, data.clean_test, data.triggered_test,
                           data.attack.detect if data.attack else None, cfg.eval.lang or data.language, out_dir,
                           defend=defend)
    if report is not None:
        metrics["defense"] = report
    metrics["model"] = model
    if is_main():  # under a multi-process launch each process generated a slice of the rows
        write_json_atomic(out_dir / "metrics.json", metrics)
        write_text_atomic(out_dir / "config.toml", dump_config(cfg))
    return metrics
