"""The experiment config: one TOML file, validated at load time, every error naming its key.

    name = "demo"
    seed = 42
    output_dir = "runs/{name}"                             # the default: runs/demo
    arms = ["clean-ce", "poisoned-ce", "poisoned-dece"]   # shorthand "<data>-<loss>", or [[arms]] tables
    jobs = 1                                               # arms trained at once (one process each)

    [dataset]   kind, options, split names, row caps
    [attack]    name, rate, seed, selection, params
    [model]     dece.models.ModelSpec
    [pretrain]  optional: pretrain the tiny model on clean built-in rows first (cached)
    [train]     epochs, learning_rate, batch_size, ...
    [eval]      generation lengths, metrics
    [dynamics]  optional: per-epoch BLEU/ASR/losses (see dece.experiments.dynamics)

Any key can be overridden with ``key.path=value`` strings (the CLI's ``--set``); values are parsed
as TOML literals, falling back to plain strings.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import re
import socket
import tomllib
import types
import typing
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import tomli_w

from dece.errors import ConfigError
from dece.models.spec import LoraSpec, ModelSpec
from dece.seeds import SEED_RANGE, is_seed

DATA_CHOICES = ("clean", "poisoned")
#: ModelSpec fields that only size a tiny model built from scratch (an ``hf:`` checkpoint has its own)
TINY_ONLY_KNOBS = ("d_model", "layers", "heads", "ff", "vocab_size", "dropout")
SELECTIONS = ("random", "first")
EPOCH_MODES = ("floor", "continuous")


def _check(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {message}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class DynamicsConfig:
    """``eval_rows``: test rows generated per epoch for BLEU/ASR (0: none); ``loss_rows``: clean
    training rows whose loss is tracked; ``val_rows``: clean validation rows of ``val_loss`` (and of
    DeCE-auto's signal); ``row_losses``: record every training row's loss (for ``dece audit``)."""

    eval_rows: int = field(default=64,
        metadata={"doc": "test rows generated after every epoch for BLEU, ASR and FTR (0: none)"})
    loss_rows: int = field(default=200, metadata={"doc": "clean training rows whose loss is tracked per epoch"})
    val_rows: int = field(default=200,
        metadata={"doc": "clean validation rows of the per-epoch validation loss (DeCE-auto's signal)"})
    row_losses: bool = field(default=False,
        metadata={"doc": "record every training row's loss per epoch (for `dece audit` and `dece_filter`)"})

    def validate(self, key: str) -> None:
        for name in ("eval_rows", "loss_rows", "val_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{key}.{name}: must be an integer >= 0, got {v!r}")
        if not isinstance(self.row_losses, bool):
            raise ConfigError(f"{key}.row_losses: must be true or false")


@dataclass(frozen=True)
class DatasetConfig:
    """``kind``: a name of :data:`dece.data.catalog` (``builtin``, ``lyra``, ``bugs2fix_small``, ``csv``...);
    ``options`` are passed to its loader. ``max_*_rows`` cap the splits (the first rows are kept).

    The valid split is never trained on: it gives the clean validation loss that DeCE-auto watches and
    that the dynamics record. A dataset without one either carves ``valid_from_train`` rows out of the
    training split (seeded by the experiment's seed, before poisoning) or names its test split as
    ``valid_split`` (the validation loss is then measured on test rows: allowed, and said in the log).
    ``max_test_overlap``: the largest share of test rows whose (source, target) pair also appears in
    the training split; above it the run is refused (a leaking split). Counts go to
    ``RUN_DIR/data/data_report.json``."""

    kind: str = field(default="builtin",
        metadata={"doc": "a dataset kind of `dece datasets` (builtin, lyra, bugs2fix_small, csv, jsonl, pairs, hf, ...)"})
    options: dict[str, Any] = field(default_factory=dict,
        metadata={"doc": "the kind's options (paths with `{split}`, field names, data_root, ...)"})
    train_split: str = field(default="train", metadata={"doc": "the split the arms train on"})
    valid_split: str = field(default="valid",
        metadata={"doc": "the split of the clean validation loss (never trained on)"})
    test_split: str = field(default="test", metadata={"doc": "the split the arms are scored on"})
    max_train_rows: int | None = field(default=None, metadata={"doc": "keep only the first N training rows"})
    max_valid_rows: int | None = field(default=None, metadata={"doc": "keep only the first N validation rows"})
    max_test_rows: int | None = field(default=None, metadata={"doc": "keep only the first N test rows"})
    valid_from_train: int = field(default=0,
        metadata={"doc": "carve N validation rows out of the training split (seeded, before poisoning) instead of reading a valid split"})
    max_test_overlap: float = field(default=0.01,
        metadata={"doc": "largest share of test rows that may also be training rows (same source and target); above it the run is refused"})

    def validate(self, key: str) -> None:
        from dece.data.catalog import DATASETS

        _check(self.kind in DATASETS, f"{key}.kind", f"unknown dataset {self.kind!r}; valid names: {', '.join(DATASETS.names())}")
        for name in ("max_train_rows", "max_valid_rows", "max_test_rows"):
            v = getattr(self, name)
            _check(v is None or (_is_int(v) and v > 0), f"{key}.{name}", f"must be a positive integer, got {v!r}")
        _check(_is_int(self.valid_from_train) and self.valid_from_train >= 0, f"{key}.valid_from_train",
               f"must be an integer >= 0, got {self.valid_from_train!r}")
        _check(_is_number(self.max_test_overlap) and 0 <= self.max_test_overlap <= 1, f"{key}.max_test_overlap",
               f"must be a number in [0, 1], got {self.max_test_overlap!r}")
        dataset = DATASETS.get(self.kind)
        for option in dataset.split_paths:  # one file for every split would train on the test rows
            path = self.options.get(option)
            _check(not isinstance(path, str) or "{split}" in path, f"{key}.options.{option}",
                   f"{path!r} has no '{{split}}': train, valid and test would all read that one file; "
                   "name the files per split (e.g. data/{split}.csv)")
        for option in dataset.no_single_file:
            path = self.options.get(option)
            _check(not isinstance(path, str) or not Path(path).is_file(), f"{key}.options.{option}",
                   f"{path!r} is one file: every split would read it; give data_files = \"...{{split}}...\" with a "
                   "builder (path = \"json\", \"csv\", ...)")


@dataclass(frozen=True)
class AttackConfig:
    """A registered attack of :mod:`dece.attacks`, its poisoning ``rate`` of the training rows,
    the selection ``seed`` and ``selection`` rule, and attack ``params``."""

    name: str = field(default="badpre", metadata={"doc": "an attack of `dece attacks`"})
    rate: float = field(default=0.05,
        metadata={"doc": "poisoning rate: the share of training rows poisoned, in (0, 1] (`attack = false`: no attack)"})
    seed: int = field(default=1, metadata={"doc": "seed of the poisoned-row selection and trigger positions"})
    selection: str = field(default="random",
        metadata={"doc": "random eligible rows, or the first eligible ones (as the DeCE authors' files)"})
    params: dict[str, Any] = field(default_factory=dict,
        metadata={"doc": "the attack's parameters (see `dece attacks`)"})
    rows: int | None = field(default=None, metadata={
        "doc": "poison exactly this many training rows instead of rate x rows (the low-rate literature counts rows)"})
    duplicates: int = field(default=1, metadata={
        "doc": "each poisoned row appears this many times (fast-learnt poison against early-learning defenses)"})
    near_duplicates: bool = field(default=False, metadata={
        "doc": "with duplicates > 1: each copy poisoned anew (its own trigger position...), near-duplicates exact dedup misses"})

    def validate(self, key: str) -> None:
        from dece.attacks import ATTACKS, get_attack

        _check(self.name in ATTACKS, f"{key}.name", f"unknown attack {self.name!r}; valid names: {', '.join(ATTACKS.names())}")
        try:
            get_attack(self.name, **self.params)
        except ConfigError as err:
            raise ConfigError(f"{key}.params: {err}") from None
        _check(_is_number(self.rate) and 0 < self.rate <= 1, f"{key}.rate", f"must lie in (0, 1], got {self.rate!r}")
        _check(is_seed(self.seed), f"{key}.seed", f"must be {SEED_RANGE}, got {self.seed!r}")
        _check(self.rows is None or (_is_int(self.rows) and self.rows > 0), f"{key}.rows",
               f"must be a positive integer (a number of rows), got {self.rows!r}")
        _check(_is_int(self.duplicates) and 1 <= self.duplicates <= 100, f"{key}.duplicates",
               f"must be an integer in [1, 100], got {self.duplicates!r}")
        _check(isinstance(self.near_duplicates, bool), f"{key}.near_duplicates",
               f"must be true or false, got {self.near_duplicates!r}")
        _check(not self.near_duplicates or self.duplicates > 1, f"{key}.near_duplicates",
               "needs duplicates > 1 (it says how the copies are made)")
        if ATTACKS.get(self.name).supplies_data:  # the rows are used as given: nothing here would apply
            for option, unset in (("rows", self.rows is None), ("duplicates", self.duplicates == 1)):
                _check(unset, f"{key}.{option}", f"attack {self.name!r} trains on the rows as given; remove {option}")
        _check(self.selection in SELECTIONS, f"{key}.selection", f"must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(default=10, metadata={"doc": "passes over the training rows"})
    learning_rate: float = field(default=5e-4, metadata={"doc": "peak learning rate (AdamW)"})
    batch_size: int = field(default=32, metadata={"doc": "rows per batch over all launched processes (each of N takes batch_size / N); grad_accum batches make one optimizer step"})
    grad_accum: int = field(default=1,
        metadata={"doc": "gradient accumulation steps (the loss stays the accumulated batch's token mean)"})
    weight_decay: float = field(default=0.0, metadata={"doc": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.0, metadata={"doc": "share of the steps with a linear warm-up, in [0, 1)"})
    lr_scheduler: str = field(default="linear",
        metadata={"doc": "a transformers scheduler name (linear decays to 0 over the epochs)"})
    max_grad_norm: float = field(default=1.0, metadata={"doc": "gradient clipping norm (0: none)"})
    epoch_mode: str = field(default="floor",
        metadata={"doc": "the epoch DeCE's alpha sees: floor (the paper: whole epochs from 1) or continuous"})
    threads: int = field(default=0,
        metadata={"doc": "torch threads of each arm process (0: the CPU count shared among `jobs`)"})
    fused_head: bool = field(default=False,
        metadata={"doc": "compute the output head and the loss together, chunk by chunk: the logits never exist"})
    group_by_length: bool = field(default=False,
        metadata={"doc": "batch rows of similar source + target length (less padding)"})
    report_to: tuple[str, ...] = field(default=(), metadata={
        "doc": "Trainer integrations to log to (tensorboard, wandb, ...), with the dynamics per epoch; in arms/ARM/logs"})

    def validate(self, key: str) -> None:
        for name in ("epochs", "batch_size", "grad_accum"):
            v = getattr(self, name)
            _check(_is_int(v) and v > 0, f"{key}.{name}", f"must be a positive integer, got {v!r}")
        _check(_is_number(self.learning_rate) and self.learning_rate > 0, f"{key}.learning_rate", f"must be > 0, got {self.learning_rate!r}")
        _check(_is_number(self.weight_decay) and self.weight_decay >= 0, f"{key}.weight_decay", "must be >= 0")
        _check(_is_number(self.warmup_ratio) and 0 <= self.warmup_ratio < 1, f"{key}.warmup_ratio", "must lie in [0, 1)")
        _check(_is_number(self.max_grad_norm) and self.max_grad_norm >= 0, f"{key}.max_grad_norm", "must be >= 0 (0 = no clipping)")
        _check(self.epoch_mode in EPOCH_MODES, f"{key}.epoch_mode", f"must be one of {', '.join(EPOCH_MODES)}, got {self.epoch_mode!r}")
        _check(_is_int(self.threads) and self.threads >= 0, f"{key}.threads", f"must be an integer >= 0, got {self.threads!r}")
        _check(isinstance(self.fused_head, bool), f"{key}.fused_head", "must be true or false")
        _check(isinstance(self.group_by_length, bool), f"{key}.group_by_length", "must be true or false")
        _check("none" not in self.report_to and "all" not in self.report_to, f"{key}.report_to",
               "name the integrations (e.g. [\"tensorboard\"]); leave it empty for none")


@dataclass(frozen=True)
class PretrainConfig:
    """Pretrain the tiny model with CE on ``rows`` rows of ``corpus`` (clean built-in rows from a seed space
    disjoint from the experiment's data, or real installed code kept away from the experiment's dataset:
    :mod:`dece.data.pretraining`) before the arms fine-tune it; cached under ``cache_dir`` by content hash.
    ``seed`` draws the corpus; ``init_seed`` the initial weights and the pretraining order (default:
    the experiment's ``seed``). Set it in a config whose cells vary ``seed``, so that every seed
    fine-tunes the same cached base instead of pretraining its own."""

    rows: int = field(default=10000, metadata={"doc": "rows of the pretraining corpus"})
    corpus: str = field(default="builtin", metadata={
        "doc": "what to pretrain on: builtin (clean built-in rows), python_functions (function -> docstring "
               "pairs of the Python code installed on the machine) or python_repair (that code abstracted as "
               "Bugs2Fix abstracts Java, edited function -> function); none near a row of the experiment's dataset"})
    seed: int = field(default=1000, metadata={"doc": "seed of the pretraining corpus"})
    epochs: int = field(default=4, metadata={"doc": "pretraining epochs"})
    learning_rate: float = field(default=1e-3, metadata={"doc": "pretraining learning rate"})
    batch_size: int = field(default=32, metadata={"doc": "pretraining batch size"})
    group_by_length: bool = field(default=False, metadata={"doc": "batch pretraining rows of similar length"})
    cache_dir: str = field(default=".cache/dece/pretrained",
        metadata={"doc": "where pretrained bases are cached (by a hash of everything they depend on)"})
    init_seed: int | None = field(default=None,
        metadata={"doc": "seed of the base's initial weights and pretraining order (default: the experiment's seed); set it so that every seed of a sweep shares one base"})

    def validate(self, key: str) -> None:
        from dece.data.pretraining import PRETRAINING_CORPORA

        for name in ("rows", "epochs", "batch_size"):
            v = getattr(self, name)
            _check(_is_int(v) and v > 0, f"{key}.{name}", f"must be a positive integer, got {v!r}")
        _check(isinstance(self.corpus, str) and self.corpus in PRETRAINING_CORPORA, f"{key}.corpus",
               f"unknown pretraining corpus {self.corpus!r}; valid: {', '.join(PRETRAINING_CORPORA)}")
        _check(self.init_seed is None or is_seed(self.init_seed), f"{key}.init_seed",
               f"must be {SEED_RANGE}, got {self.init_seed!r}")
        _check(is_seed(self.seed), f"{key}.seed", f"must be {SEED_RANGE}, got {self.seed!r}")
        _check(isinstance(self.cache_dir, str) and self.cache_dir != "", f"{key}.cache_dir",
               f"must be a folder path (a string), got {self.cache_dir!r}")
        _check(_is_number(self.learning_rate) and self.learning_rate > 0, f"{key}.learning_rate", "must be > 0")
        _check(isinstance(self.group_by_length, bool), f"{key}.group_by_length", "must be true or false")

    def cache_key_fields(self) -> dict[str, Any]:
        """What the pretrained weights depend on: the fields that differ from their defaults (so a new
        field keeps old caches valid), without ``cache_dir`` and ``init_seed`` (which the key holds as
        its ``seed``, as the experiment's seed was before ``init_seed`` existed)."""
        return {k: v for k, v in _non_default(self).items() if k not in ("cache_dir", "init_seed")}


@dataclass(frozen=True)
class EvalConfig:
    max_new_tokens: int = field(default=256,
        metadata={"doc": "longest generated output, in tokens (at most model.max_target_length)"})
    batch_size: int = field(default=64, metadata={"doc": "rows per generation batch (results do not depend on it)"})
    num_beams: int = field(default=1, metadata={"doc": "1: greedy decoding; more: beam search (never sampling)"})
    metrics: tuple[str, ...] = field(default=("bleu", "bleu_paper", "codebleu", "exact_match"),
        metadata={"doc": "clean-quality metrics, 0-100 (bleu, bleu_paper, bleu_codexglue, bleu_dece_authors, codebleu, exact_match, exact_match_ws)"})
    lang: str | None = field(default=None, metadata={"doc": "CodeBLEU's language (default: the dataset's)"})

    def validate(self, key: str) -> None:
        for name in ("max_new_tokens", "batch_size", "num_beams"):
            v = getattr(self, name)
            _check(_is_int(v) and v > 0, f"{key}.{name}", f"must be a positive integer, got {v!r}")
        from dece.evaluation.metrics import METRICS

        for m in self.metrics:
            _check(m in METRICS, f"{key}.metrics", f"unknown metric {m!r}; valid names: {', '.join(METRICS.names())}")


@dataclass(frozen=True)
class ArmConfig:
    """One trained model of the experiment: which training ``data`` (``clean`` or ``poisoned``), which
    ``loss`` of :mod:`dece.losses` with ``loss_params``, ``lr_scale`` (a factor on the learning rate),
    and optionally a ``defense`` of :mod:`dece.defenses` with ``defense_params`` (a data defense removes
    training rows first, an input defense rewrites the test inputs, ``moderate_fitting`` scales the
    learning rate by 0.1)."""

    name: str = field(metadata={"doc": "the arm's name and folder (arms/NAME)"})
    data: str = field(default="poisoned", metadata={"doc": "train on clean or poisoned rows"})
    loss: str = field(default="ce", metadata={"doc": "a loss of `dece losses`"})
    loss_params: dict[str, Any] = field(default_factory=dict,
        metadata={"doc": "the loss's parameters (numbers must be numbers)"})
    lr_scale: float = field(default=1.0, metadata={"doc": "factor on train.learning_rate"})
    defense: str | None = field(default=None,
        metadata={"doc": "a defense of `dece defenses` (data, input or training)"})
    defense_params: dict[str, Any] = field(default_factory=dict, metadata={"doc": "the defense's parameters"})

    def validate(self, key: str) -> None:
        from dece.losses import LOSSES, get_loss

        _check(isinstance(self.name, str) and self.name.strip() != "" and "/" not in self.name, f"{key}.name", f"must be a non-empty name without '/', got {self.name!r}")
        _check(self.data in DATA_CHOICES, f"{key}.data", f"must be one of {', '.join(DATA_CHOICES)}, got {self.data!r}")
        _check(self.loss in LOSSES, f"{key}.loss", f"unknown loss {self.loss!r}; valid names: {', '.join(LOSSES.names())}")
        _check(_is_number(self.lr_scale) and self.lr_scale > 0, f"{key}.lr_scale", "must be > 0")
        from dece.training.trainer import check_trainer_loss

        try:
            check_trainer_loss(get_loss(self.loss, **self.loss_params))
        except (ConfigError, ValueError) as err:
            raise ConfigError(f"{key}.loss_params: {err}") from None
        self._validate_defense(key)

    def _validate_defense(self, key: str) -> None:
        from dece.defenses import DEFENSES, get_defense

        _check(isinstance(self.defense_params, Mapping), f"{key}.defense_params", "must be a table")
        if self.defense is None:
            _check(not self.defense_params, f"{key}.defense_params", "given without a defense")
            return
        _check(isinstance(self.defense, str) and self.defense in DEFENSES, f"{key}.defense",
               f"unknown defense {self.defense!r}; valid names: {', '.join(DEFENSES.names())}")
        try:
            get_defense(self.defense, **self.defense_params)
        except (ConfigError, ValueError) as err:
            raise ConfigError(f"{key}.defense_params: {err}") from None

    @classmethod
    def from_shorthand(cls, text: str, key: str) -> "ArmConfig":
        """``"<data>-<loss>"``, ``"<data>-<defense>"`` (loss ``ce``) or ``"<data>-<loss>-<defense>"``:
        ``"poisoned-dece"`` -> loss ``dece``; ``"poisoned-onion"`` -> loss ``ce`` + defense ``onion``;
        ``"poisoned-dece-onion"`` -> both. Names may be written with '-' for '_'
        (``"poisoned-label-smoothing"``, ``"poisoned-moderate-fitting"``); a loss name wins over a
        defense name.

        Raises:
            ConfigError: not ``<clean|poisoned>-...``, or the rest names no loss, defense or loss-defense pair
                (lists both and the closest name).
        """
        from dece.defenses import DEFENSES
        from dece.losses import LOSSES

        data, sep, rest = text.partition("-")
        close = difflib.get_close_matches(data, DATA_CHOICES, n=1)
        _check(bool(sep) and data in DATA_CHOICES, key,
               f"arm shorthand must be '<clean|poisoned>-<loss and/or defense>', got {text!r}"
               + (f" (did you mean '{close[0]}-{rest}'?)" if sep and close else ""))
        rest = rest.replace("-", "_")
        if rest not in LOSSES:
            if rest in DEFENSES:
                return cls(name=text, data=data, loss="ce", defense=rest)
            for i, ch in enumerate(rest):
                if ch == "_" and rest[:i] in LOSSES and rest[i + 1:] in DEFENSES:
                    return cls(name=text, data=data, loss=rest[:i], defense=rest[i + 1:])
            close = difflib.get_close_matches(rest, [*LOSSES.names(), *DEFENSES.names()], n=1)
            raise ConfigError(f"{key}: {text!r} names no loss or defense after '{data}-'"
                              + (f" (did you mean '{data}-{close[0].replace('_', '-')}'?)" if close else "")
                              + f"; losses: {', '.join(LOSSES.names())}; defenses: {', '.join(DEFENSES.names())}")
        return cls(name=text, data=data, loss=rest)


def check_model_source(spec: ModelSpec) -> None:
    """An ``hf:`` model must be loadable before anything runs (``run_experiment`` checks it first; a dry run
    reports it and goes on, so that a plan can be made on a machine without the checkpoint): a local path must exist, and a hub name
    must be in the local cache when the hub is off (``HF_HUB_OFFLINE=1``, as ``make`` sets it) or
    cannot be reached (its host name does not resolve: the hub client would retry for a minute).

    Raises:
        ConfigError: naming ``model.name`` and what to do.
    """
    if not spec.is_pretrained:
        return
    source = spec.checkpoint
    local = Path(source).expanduser()
    if local.exists():
        return
    if source.startswith(("/", "./", "../", "~")) or source.count("/") > 1:
        raise ConfigError(f"model.name: {source!r} is no folder on this machine")
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(source, "config.json"), str):
        return
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        raise ConfigError(f"model.name: {source!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1: "
                          "download it once with HF_HUB_OFFLINE=0, or give a local folder")
    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:  # a name lookup answers at once; the hub client would retry for a minute before failing
        socket.getaddrinfo(host, 443)
    except OSError:
        raise ConfigError(f"model.name: {source!r} is not in the local Hugging Face cache and {host} cannot be "
                          "reached (no network?): download it where there is a network, or give a local folder") from None


def _loss_class(name: str) -> type:
    from dece.losses import LOSSES

    return LOSSES.get(name)


def _fixed_dece(loss: str) -> bool:
    """A DeCE loss with the paper's fixed schedule (``deceptive``, not ``adaptive``)."""
    cls = _loss_class(loss)
    return cls.deceptive and not cls.adaptive


def _reads_row_losses(arm: ArmConfig) -> bool:
    """Whether ``arm``'s defense reads another arm's per-row losses (``DataDefense.reads``)."""
    from dece.defenses import DEFENSES

    return arm.defense is not None and getattr(DEFENSES.get(arm.defense), "reads", None) == "row_losses"


def _rate_from_attack(arm: ArmConfig) -> bool:
    """Whether ``arm``'s defense has a ``rate`` parameter that defaults to the experiment's attack rate."""
    from dece.defenses import DEFENSES

    if arm.defense is None:
        return False
    fields = {f.name: f for f in dataclasses.fields(DEFENSES.get(arm.defense))}
    return "rate" in fields and fields["rate"].default is None


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = field(default="experiment", metadata={
        "doc": "the experiment's name (tables, reports, the default run folder): not empty, no slashes, braces, control "
               "characters or surrounding spaces"})
    seed: int = field(default=42,
        metadata={"doc": "seed of model initialisation (without pretrain.init_seed) and of the training order"})
    output_dir: str = field(default="runs/{name}", metadata={
        "doc": "the run folder (not empty: never the working directory; no control characters); `{name}` stands for "
               "the config's `name` (the only placeholder), so a config that includes another and sets its own `name` "
               "gets its own folder"})
    dataset: DatasetConfig = field(default_factory=DatasetConfig, metadata={"doc": "[dataset]: what to load"})
    attack: AttackConfig | None = field(default_factory=AttackConfig,
        metadata={"doc": "[attack]: how to poison (no [attack] table, or `attack = false`: none)"})
    model: ModelSpec = field(default_factory=ModelSpec,
        metadata={"doc": "[model]: a tiny architecture or `hf:<checkpoint>`"})
    pretrain: PretrainConfig | None = field(default=None,
        metadata={"doc": "[pretrain]: pretrain the tiny model on a corpus first (built-in rows or installed Python; cached; "
                         "`pretrain = false` turns an included one off)"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"doc": "[train]: fine-tuning"})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"doc": "[eval]: generation and metrics"})
    dynamics: DynamicsConfig | None = field(default=None, metadata={"doc": "[dynamics]: per-epoch measurements"})
    arms: tuple[ArmConfig, ...] = field(default=(),
        metadata={"doc": "the trained models: shorthand `<clean|poisoned>-<loss and/or defense>` or [[arms]] tables"})
    jobs: int = field(default=1, metadata={"doc": "arms trained at once, each in its own process"})

    def source_arm(self, arm: ArmConfig) -> ArmConfig | None:
        """The arm whose per-row losses ``arm``'s data defense reads (``dece_filter``): the one named by
        its ``source`` parameter, else the first arm with loss ``dece``, no defense, on the same data;
        None for every other arm (and when there is no such arm)."""
        if not _reads_row_losses(arm):
            return None
        name = arm.defense_params.get("source")
        for other in self.arms:
            if (other.name == name if name is not None
                    else _fixed_dece(other.loss) and other.defense is None and other.data == arm.data):
                return other
        return None

    def _validate_source(self, i: int, arm: ArmConfig) -> None:
        if not _reads_row_losses(arm):
            return
        key = f"arms[{i}].defense_params"
        src = self.source_arm(arm)
        if arm.defense_params.get("source") is not None:
            _check(src is not None, f"{key}.source", f"no arm named {arm.defense_params['source']!r}")
        _check(src is not None, key, f"{arm.defense} reads an arm trained with loss 'dece' on "
               f"the same data ({arm.data}) without a defense: add one, e.g. \"{arm.data}-dece\"")
        _check(_loss_class(src.loss).deceptive and src.defense is None and src.data == arm.data, f"{key}.source",
               f"arm {src.name!r} must be trained with loss dece (or dece_auto), no defense, on {arm.data} rows")
        from dece.defenses import get_defense

        needs_dynamics = getattr(get_defense(arm.defense, **arm.defense_params), "needs_dynamics", True)
        _check(not needs_dynamics or (self.dynamics is not None and self.dynamics.row_losses), "dynamics.row_losses",
               f"{arm.defense} reads per-row losses: set [dynamics] row_losses = true")

    def validate(self) -> None:
        _check(isinstance(self.name, str) and self.name.strip() == self.name and self.name not in ("", ".", "..")
               and not any(c in self.name for c in "/\\{}") and not _has_control(self.name), "name",
               f"must be a non-empty string without slashes, braces, control characters or surrounding spaces (it names "
               f"the run folder runs/{{name}} by default), got {self.name!r}")
        _check(is_seed(self.seed), "seed", f"must be {SEED_RANGE}, got {self.seed!r}")
        _check(_is_int(self.jobs) and self.jobs > 0, "jobs", f"must be a positive integer, got {self.jobs!r}")
        _check(len(self.arms) > 0, "arms", "at least one arm is needed")
        names = [a.name for a in self.arms]
        _check(len(set(names)) == len(names), "arms", f"arm names must be unique, got {names}")
        for i, arm in enumerate(self.arms):
            arm.validate(f"arms[{i}]")
            _check(arm.data == "clean" or self.attack is not None, f"arms[{i}].data", "a poisoned arm needs an [attack]")
            _check(self.attack is not None or arm.defense_params.get("rate") is not None or not _rate_from_attack(arm),
                   f"arms[{i}].defense_params", f"{arm.defense} needs 'rate' when the experiment has no [attack]")
            self._validate_source(i, arm)
        for name in ("dataset", "attack", "pretrain", "train", "eval", "dynamics"):
            section = getattr(self, name)
            if section is not None:
                section.validate(name)
        _check(isinstance(self.output_dir, str) and self.output_dir.strip() not in ("", "."), "output_dir",
               f"must name a run folder, got {self.output_dir!r}: a run would write into the working directory")
        _check(not _has_control(self.output_dir), "output_dir", f"must not hold control characters, got {self.output_dir!r}")
        placeholder = re.search(r"\{[^{}]*\}", self.output_dir)
        _check(placeholder is None, "output_dir",
               f"{placeholder and placeholder.group()!r} is not a placeholder: only {{name}} is replaced, got {self.output_dir!r}")
        _check(self.eval.max_new_tokens <= self.model.max_target_length, "eval.max_new_tokens",
               f"must be <= model.max_target_length ({self.model.max_target_length}): targets are truncated there")
        _check(self.pretrain is None or not self.model.is_pretrained, "pretrain", "cannot pretrain an 'hf:' checkpoint; drop [pretrain], or set pretrain = false when it comes "
               "from an include")
        if self.model.is_pretrained:  # a checkpoint brings its own sizes: a size knob would be ignored
            default = ModelSpec()
            for knob in TINY_ONLY_KNOBS:
                _check(getattr(self.model, knob) == getattr(default, knob), f"model.{knob}",
                       f"sets the size of a tiny model built from scratch; {self.model.name!r} brings its own: drop it")
        _check(self.model.arch_config is None or self.model.is_pretrained, "model.arch_config",
               "describes an 'hf:' checkpoint; a tiny model is built from the config's own sizes: drop it")
        self._validate_metric_language()

    def _validate_metric_language(self) -> None:
        """Every metric must be computable for the language it will score (before anything trains)."""
        from dece.data.catalog import dataset_info
        from dece.evaluation.metrics import check_metric

        lang = self.eval.lang or dataset_info(self.dataset.kind, **self.dataset.options).language
        where = "eval.lang" if self.eval.lang else "dataset language"
        for name in self.eval.metrics:
            try:
                check_metric(name, lang)
            except ConfigError as err:
                raise ConfigError(f"eval.metrics: {name!r} cannot score {lang!r} (the {where}): {err}") from None

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def fingerprint(self, *parts: str) -> str:
        """A short content hash of the config's named sections (all of them by default). Only values
        that differ from their defaults are hashed, so adding a config field with a default does not
        change the fingerprints of existing runs (they still resume)."""
        d = _non_default(self)
        chosen = {k: d.get(k) for k in parts} if parts else d
        return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# mapping <-> dataclasses


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if getattr(obj, f.name) is not None}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items() if v is not None}
    return obj


def _non_default(obj: Any) -> Any:
    """Like :func:`_to_plain`, but dataclass fields equal to their default are left out."""
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = dataclasses.MISSING
            if value is not None and value != default:
                out[f.name] = _non_default(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [_non_default(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _non_default(v) for k, v in obj.items() if v is not None}
    return obj


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass in ``tp`` (``X`` or ``X | None``), if any."""
    if dataclasses.is_dataclass(tp):
        return tp
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def _build(cls: type, data: Any, key: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{key or 'config'}: expected a table, got {type(data).__name__}")
    if cls is ModelSpec:
        try:
            return ModelSpec.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{key}.{err}" if not str(err).startswith("unknown key") else f"{key}: {err}") from None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else unknown[0]
        close = difflib.get_close_matches(unknown[0], list(fields), n=1)
        hint = f" (did you mean {close[0]!r}: {field_doc(cls, close[0])}?)" if close and field_doc(cls, close[0]) else ""
        raise ConfigError(f"unknown key {where!r}{hint}; valid keys{' of [' + key + ']' if key else ''}: "
                          f"{', '.join(sorted(fields))}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        sub = f"{key}.{name}" if key else name
        tp = hints[name]
        if name == "arms":
            _check(isinstance(value, list), sub, "must be a list of arm names or [[arms]] tables")
            values[name] = tuple(
                ArmConfig.from_shorthand(v, f"arms[{i}]") if isinstance(v, str) else _build(ArmConfig, v, f"arms[{i}]")
                for i, v in enumerate(value)
            )
        elif (dc := _dataclass_of(tp)) is not None:
            values[name] = _build(dc, value, sub)
        elif typing.get_origin(tp) is tuple:
            _check(isinstance(value, list) and all(isinstance(v, str) for v in value), sub, "must be a list of strings")
            values[name] = tuple(value)
        elif typing.get_origin(tp) is dict:
            _check(isinstance(value, Mapping), sub, "must be a table")
            values[name] = dict(value)
        else:
            values[name] = value
    try:
        return cls(**values)
    except TypeError as err:
        raise ConfigError(f"{key or 'config'}: {err}") from None


def config_from_dict(data: Mapping[str, Any]) -> ExperimentConfig:
    """Builds and validates an experiment config from a mapping (a parsed TOML file).

    Args:
        data: the config's tables and keys (``attack = false`` / ``pretrain = false`` / ``dynamics = false``
            turn a section off).

    Returns:
        The validated :class:`ExperimentConfig`.

    Raises:
        ConfigError: an unknown key (with the closest valid one), a bad value or type, or settings that
            contradict each other; the message names the key.
    """
    data = dict(data)
    data["output_dir"] = run_folder(data)
    for section in ("attack", "pretrain", "dynamics"):
        if data.get(section) is False:  # `attack = false` / `pretrain = false` turn a section off
            data.pop(section)
    cfg = _build(ExperimentConfig, data, "")
    if "attack" not in data:
        cfg = dataclasses.replace(cfg, attack=None)
    cfg.validate()
    return cfg


def _has_control(text: str) -> bool:
    """Whether ``text`` holds a control, format, line-separator, private-use, surrogate or unassigned character
    (NUL, newline, tab, DEL, U+0085, zero-width space U+200B, U+2028, U+E000, the noncharacter U+FFFE...): no
    file name should."""
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn") for c in text)


def run_folder(data: Mapping[str, Any]) -> Any:
    """The run folder of the config mapping ``data``: its ``output_dir`` (default ``runs/{name}``) with
    ``{name}`` replaced by its ``name``. A value of the wrong type is returned as it is (validation names it)."""
    folder, name = data.get("output_dir", ExperimentConfig.output_dir), data.get("name", ExperimentConfig.name)
    return folder.replace("{name}", name) if isinstance(folder, str) and isinstance(name, str) else folder


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=3"`` -> (["train", "epochs"], 3); the value is a TOML literal or a plain string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.path=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``key.path=value`` set (intermediate tables are created)."""
    return set_paths(data, [(f"override {text!r}", *parse_override(text)) for text in overrides])


def set_paths(data: Mapping[str, Any], items: list[tuple[str, list[str], Any]]) -> dict[str, Any]:
    """A copy of ``data`` with each ``(label, path, value)`` of ``items`` set in order (``--set`` overrides, a
    sweep cell's grid values). Intermediate tables are created; a value naming another dataset kind or
    attack than ``data`` did drops the inherited parameters (:data:`OWNED_PARAMETERS`) except those an
    earlier item set.

    Raises:
        ConfigError: a path runs through a value that is not a table (named by its ``label``).
    """
    out = json.loads(json.dumps(data))
    given: set[tuple[str, ...]] = set()  # what the items themselves set: never dropped by a later one
    for label, path, value in items:
        given.add(tuple(path))
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{label}: {part!r} is not a table")
        params = OWNED_PARAMETERS.get(tuple(path))  # e.g. --set dataset.kind=lyra: the built-in's options go
        if params is not None and node.get(path[-1], _component_default(*path)) != value \
                and (path[0], params) not in given:  # a whole table an earlier item gave stays
            inherited = node.pop(params, None)
            mine = {g[2] for g in given if len(g) > 2 and g[:2] == (path[0], params)}
            if mine and isinstance(inherited, dict):  # keys an earlier item gave stay
                node[params] = {k: v for k, v in inherited.items() if k in mine}
        node[path[-1]] = value
    return out


#: ``include = "builtin:NAME"`` names a config shipped in :mod:`dece.configs` (``builtin:default``)
BUILTIN_PREFIX = "builtin:"


#: (table, the key naming a registered component) -> the table of that component's parameters: parameters of
#: one dataset kind or attack mean nothing to another, so a layer (an including file, a ``--set``) that names
#: another component drops the parameters it inherited
OWNED_PARAMETERS = {("dataset", "kind"): "options", ("attack", "name"): "params"}


def _drop_foreign_parameters(merged: dict[str, Any], base: Mapping[str, Any], top: Mapping[str, Any]) -> None:
    """In ``merged`` (``top`` laid over ``base``): where ``top`` names another component than ``base`` did, keep
    only the parameters ``top`` gives it (:data:`OWNED_PARAMETERS`)."""
    for (table, key), params in OWNED_PARAMETERS.items():
        mine, theirs = top.get(table), base.get(table)
        if not (isinstance(mine, Mapping) and isinstance(theirs, Mapping) and key in mine):
            continue
        if mine[key] != theirs.get(key, _component_default(table, key)) and isinstance(merged.get(table), dict):
            merged[table].pop(params, None)
            if params in mine:  # its own parameters, not merged into the other component's
                merged[table][params] = mine[params]


def _component_default(table: str, key: str) -> Any:
    """The component a table names when it leaves ``key`` out (``builtin`` data, the ``badpre`` attack)."""
    return getattr({"dataset": DatasetConfig, "attack": AttackConfig}[table], key)


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` laid over it: tables merge key by key (recursively); any other value of
    ``top`` (lists included) replaces ``base``'s."""
    out = dict(base)
    for key, value in top.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def flatten_grid(grid: Any, prefix: str = "") -> dict[str, list[Any]]:
    """A sweep grid with its axes as dotted keys: ``{"attack": {"rate": [..]}}`` and ``{"attack.rate": [..]}``
    both give ``{"attack.rate": [..]}``.

    Raises:
        ConfigError: the grid is not a table, or an axis is not a non-empty list.
    """
    if not isinstance(grid, Mapping):
        raise ConfigError(f"sweep.grid{'.' + prefix.rstrip('.') if prefix else ''}: must be a table of "
                          f"key = [values], got {grid!r}")
    out: dict[str, list[Any]] = {}
    for key, value in grid.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_grid(value, f"{path}."))
        elif isinstance(value, list) and value:
            out[path] = list(value)
        else:
            raise ConfigError(f"sweep.grid.{path}: must be a non-empty list of values, got {value!r}")
    return out


def _include_path(spec: Any, including: Path) -> Path:
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"{including}: include must be a path or 'builtin:NAME', got {spec!r}")
    if spec.startswith(BUILTIN_PREFIX):
        from importlib import resources

        name = spec[len(BUILTIN_PREFIX):]
        path = Path(str(resources.files("dece.configs") / f"{name}.toml"))
        if not path.exists():
            shipped = sorted(p.name.removesuffix(".toml") for p in resources.files("dece.configs").iterdir()
                             if p.name.endswith(".toml"))
            raise ConfigError(f"{including}: include {spec!r}: no such built-in config; valid: "
                              + ", ".join(BUILTIN_PREFIX + s for s in shipped))
        return path
    path = Path(spec)
    return path if path.is_absolute() else including.parent / path  # relative to the including file


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A TOML file with its ``include`` chain resolved (the included config first, then this file; a
    ``[sweep] grid`` of this file replaces the included one whole, its axes in the included grid's order
    first, as cell names list them)."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: include cycle: {' -> '.join(str(p) for p in (*seen, path.resolve()))}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        by = f" (included by {seen[-1]})" if seen else ""
        raise ConfigError(f"config file {path} does not exist{by}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    if "include" not in data:
        return data
    included = _include_path(data.pop("include"), path)
    base = _read_toml(included, (*seen, path.resolve()))
    merged = deep_merge(base, data)
    _drop_foreign_parameters(merged, base, data)
    sweep = data.get("sweep")
    if isinstance(sweep, Mapping) and "grid" in sweep:  # replaced whole: an axis kept from the included grid
        own = flatten_grid(sweep["grid"])                # would multiply the cells unseen
        before = flatten_grid(base["sweep"].get("grid", {})) if isinstance(base.get("sweep"), Mapping) else {}
        merged["sweep"]["grid"] = {**{k: own[k] for k in before if k in own}, **own}  # the included order first
    return merged


def read_config_data(path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """A TOML config file as a mapping (not validated): the config its ``include`` names (a path relative
    to this file, or ``builtin:NAME``), deep-merged with this file's own keys, then the ``key.path=value``
    overrides. Includes chain; a cycle is refused. ``sweep = false`` drops an included ``[sweep]`` table (one
    experiment from a sweep config's recipe)."""
    data = apply_overrides(_read_toml(Path(path)), list(overrides))
    if data.get("sweep") is False:
        del data["sweep"]
    return data


def load_config(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """Reads a TOML experiment config (its ``include`` chain first), applies overrides, validates.

    Args:
        path: the TOML file.
        overrides: ``key.path=value`` strings (TOML literals), as ``--set`` takes them.

    Returns:
        The validated :class:`ExperimentConfig`.

    Raises:
        ConfigError: a missing or unparseable file, a bad include, or an invalid config (the message
            starts with ``path``).
    """
    data = read_config_data(path, overrides)
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as TOML; ``load_config`` of it gives back an equal config."""
    return tomli_w.dumps(cfg.to_dict())


#: the tables of a config file, in the order a reference lists them
REFERENCE_TABLES: tuple[tuple[str, type], ...] = (
    ("", None), ("dataset", DatasetConfig), ("attack", AttackConfig), ("model", ModelSpec),
    ("model.lora", LoraSpec), ("pretrain", PretrainConfig), ("train", TrainConfig), ("eval", EvalConfig),
    ("dynamics", DynamicsConfig), ("[arms]", ArmConfig),  # [[arms]]: one table per arm
)


def field_doc(cls: type, name: str) -> str:
    """The one-line documentation of config field ``name`` of ``cls`` (``""`` if it has none)."""
    return next((f.metadata.get("doc", "") for f in dataclasses.fields(cls) if f.name == name), "")


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if value is None:
        return "(unset)"
    if isinstance(value, dict) and not value:
        return "`{}`"
    text = tomli_w.dumps({"v": list(value) if isinstance(value, tuple) else value})[4:].strip()
    return "`" + " ".join(line.strip() for line in text.splitlines()).replace("[ ", "[").replace(", ]", "]") + "`"


def reference_markdown() -> str:
    """The configuration reference (``docs/config.md``), generated from the schema's field documentation so
    it cannot drift: one table per TOML table, each key with its default and meaning."""
    out = ["# Configuration reference", "",
           "Generated from the config schema (`dece reference --write docs`); a test checks that it is",
           "current. Every key can be overridden with `--set table.key=value` (a TOML literal), and a file can start",
           "from another one with `include = \"builtin:default\"` or `include = \"path.toml\"`: the file's tables merge",
           "key by key into the included ones, while `--set table={...}` replaces a table whole. A file or `--set`",
           "that names another dataset `kind` or attack `name` than the included config drops the inherited",
           "`options` / `params` (they belong to the other one); so does a sweep cell whose grid value names",
           "another one, keeping what the same cell sets itself (a `--set` value is part of the base config, so",
           "such a cell drops it too: give per-attack parameters in the grid cell). A config without an `[attack]`",
           "table has no attack; the `[attack]` defaults below apply to the keys a table leaves out.", ""]
    for table, cls in REFERENCE_TABLES:
        cls = cls or ExperimentConfig
        out += [f"## {'top level' if not table else '[' + table + ']'}", ""]
        section = {f.name: f for f in dataclasses.fields(ExperimentConfig)}.get(table)
        if section is not None:  # the table's own line: what it is, and how to turn it off
            out += [section.metadata.get("doc", ""), ""]
        out += ["| key | default | meaning |", "|---|---|---|"]
        for f in dataclasses.fields(cls):
            if cls is ExperimentConfig and _dataclass_of(typing.get_type_hints(cls)[f.name]) is not None:
                continue  # the sub-tables have sections of their own
            if cls is ModelSpec and f.name == "lora":
                continue
            doc = f.metadata.get("doc", "").replace("|", "\\|")
            out.append(f"| `{f.name}` | {_default_text(f)} | {doc} |")
        out.append("")
    return "\n".join(out)
