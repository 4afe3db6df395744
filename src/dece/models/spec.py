"""What model to build: a validated, immutable description that a TOML table maps onto."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from dece.errors import ConfigError

#: HF attribute name -> token text. ``sep_token`` separates prompt and target for decoder-only models.
SPECIAL_TOKENS: dict[str, str] = {
    "pad_token": "<pad>",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "<sep>",
}
#: 256 byte symbols plus the special tokens: the smallest vocabulary a byte-level BPE can have.
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)

PRETRAINED_PREFIX = "hf:"
DTYPES = ("float32", "bfloat16")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")


def _known_keys(cls: type, data: Mapping[str, Any], prefix: str) -> None:
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ConfigError(f"unknown key '{prefix}{unknown[0]}'; valid keys: {', '.join(sorted(valid))}")


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapters (via PEFT): rank ``r``, scaling ``alpha``, ``dropout`` on the adapter input, and the
    module names to wrap. ``target_modules=None`` lets PEFT choose by model type (it knows T5, BART,
    GPT-2, Llama...; the ``codebert-tiny`` encoder-decoder needs them named, e.g. ``("query", "value")``)."""

    r: int = field(default=8, metadata={"doc": "LoRA rank"})
    alpha: float = field(default=16.0, metadata={"doc": "LoRA scaling"})
    dropout: float = field(default=0.05, metadata={"doc": "dropout on the adapters' input"})
    target_modules: tuple[str, ...] | None = field(default=None,
        metadata={"doc": "module names to wrap (default: PEFT's choice for the model type)"})

    def __post_init__(self) -> None:
        _positive_int("lora.r", self.r)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or self.alpha <= 0:
            raise ConfigError(f"lora.alpha must be a positive number, got {self.alpha!r}")
        _probability("lora.dropout", self.dropout)
        if self.target_modules is not None:
            modules = self.target_modules
            if isinstance(modules, str) or not modules or not all(isinstance(m, str) and m for m in modules):
                raise ConfigError(f"lora.target_modules must be a non-empty list of module names, got {modules!r}")
            object.__setattr__(self, "target_modules", tuple(modules))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LoraSpec":
        _known_keys(cls, data, "lora.")
        return cls(**data)


@dataclass(frozen=True)
class ModelSpec:
    """A model to build.

    ``name`` is a registered tiny architecture (see :data:`dece.models.ARCHITECTURES`), built from
    scratch with the size knobs below and a tokenizer trained on the task's text, or
    ``"hf:<hub name or local path>"`` for a pretrained checkpoint (its own tokenizer and sizes; the size
    knobs are then unused). ``max_source_length``/``max_target_length`` count tokens including the
    special ones; ``dtype`` is the weights' dtype; ``lora`` adds trainable adapters and freezes the rest.
    """

    name: str = field(default="t5-tiny",
        metadata={"doc": "a tiny architecture (t5-tiny, bart-tiny, gpt2-tiny, llama-tiny, codebert-tiny) or `hf:<hub name or local path>`"})
    d_model: int = field(default=128, metadata={"doc": "tiny model width"})
    layers: int = field(default=2, metadata={"doc": "tiny model layers (per stack)"})
    heads: int = field(default=4, metadata={"doc": "attention heads of a tiny model"})
    ff: int = field(default=512, metadata={"doc": "feed-forward width of a tiny model"})
    vocab_size: int = field(default=4000, metadata={"doc": "BPE vocabulary of a tiny model's tokenizer"})
    dropout: float = field(default=0.1, metadata={"doc": "dropout of a tiny model"})
    max_source_length: int = field(default=256, metadata={"doc": "source tokens kept (special tokens included)"})
    max_target_length: int = field(default=256, metadata={"doc": "target tokens kept (special tokens included)"})
    dtype: str = field(default="float32", metadata={"doc": "weights' dtype: float32 or bfloat16"})
    lora: LoraSpec | None = field(default=None, metadata={"doc": "[model.lora]: train LoRA adapters only (PEFT)"})
    arch_config: str | None = field(default=None, metadata={
        "doc": "an hf: model's config.json for the dry run's memory estimate on a machine without the checkpoint "
               "(not part of any fingerprint)"})

    def __post_init__(self) -> None:
        from dece.models.architectures import ARCHITECTURES  # transformers: only when a spec is built

        if not isinstance(self.name, str) or not (
            self.name in ARCHITECTURES or (self.name.startswith(PRETRAINED_PREFIX) and self.name[3:].strip())
        ):
            raise ConfigError(
                f"name must be one of {', '.join(ARCHITECTURES.names())} or '{PRETRAINED_PREFIX}<hub name or "
                f"local path>', got {self.name!r}"
            )
        for knob in ("d_model", "layers", "heads", "ff", "vocab_size", "max_source_length", "max_target_length"):
            _positive_int(knob, getattr(self, knob))
        if self.d_model % self.heads:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if self.vocab_size < MIN_VOCAB_SIZE:
            raise ConfigError(
                f"vocab_size must be at least {MIN_VOCAB_SIZE} (256 bytes + special tokens), got {self.vocab_size}"
            )
        if self.max_source_length < 3 or self.max_target_length < 2:
            raise ConfigError("max_source_length must be >= 3 and max_target_length >= 2 (room for special tokens)")
        _probability("dropout", self.dropout)
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.lora is not None and not isinstance(self.lora, LoraSpec):
            raise ConfigError(f"lora must be a LoraSpec or None, got {type(self.lora).__name__}")

    @property
    def is_pretrained(self) -> bool:
        """True for ``hf:`` checkpoints, False for tiny architectures built from scratch."""
        return self.name.startswith(PRETRAINED_PREFIX)

    @property
    def checkpoint(self) -> str:
        """The hub name or local path of an ``hf:`` model."""
        if not self.is_pretrained:
            raise ValueError(f"{self.name!r} is a tiny architecture, not a pretrained checkpoint")
        return self.name[len(PRETRAINED_PREFIX):].strip()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelSpec":
        """Build from a config table (e.g. TOML ``[model]``); ``lora`` may be a nested table."""
        _known_keys(cls, data, "")
        values = dict(data)
        if isinstance(values.get("lora"), Mapping):
            values["lora"] = LoraSpec.from_dict(values["lora"])
        return cls(**values)
