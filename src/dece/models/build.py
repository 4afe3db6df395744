"""Build a model and its tokenizer from a :class:`ModelSpec`: a tiny architecture or an ``hf:`` checkpoint."""

from __future__ import annotations

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from dece.errors import ConfigError
from dece.models.architectures import ARCHITECTURES
from dece.models.spec import LoraSpec, ModelSpec
from dece.models.tokenizer import SPECIAL_TOKENS


def build_model(
    spec: ModelSpec, tokenizer: PreTrainedTokenizerBase | None = None
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase, bool]:
    """Return ``(model, tokenizer, is_encoder_decoder)``.

    A tiny architecture needs the ``tokenizer`` (see :func:`dece.models.build_tokenizer`); its vocabulary
    size is ``len(tokenizer)`` and its weights are initialised from torch's current RNG state (seed first).
    An ``hf:`` model loads model and tokenizer from the checkpoint (pass ``tokenizer=None``); it is
    never downloaded when ``HF_HUB_OFFLINE=1``. Decoder-only models get a ``sep_token`` (added, with the
    embeddings resized, if the checkpoint has none) and a ``pad_token`` (``eos`` if missing). The
    model's and its generation config's pad/bos/eos/decoder-start ids are made to agree with the
    tokenizer. ``spec.lora`` wraps the model in PEFT adapters; only they stay trainable.
    """
    dtype = getattr(torch, spec.dtype)
    if spec.is_pretrained:
        if tokenizer is not None:
            raise ConfigError(f"tokenizer: pass None for {spec.name!r}; its tokenizer is loaded from the checkpoint")
        tokenizer = AutoTokenizer.from_pretrained(spec.checkpoint)
        config = AutoConfig.from_pretrained(spec.checkpoint)
        model = _model_class(config).from_pretrained(spec.checkpoint, dtype=dtype)
    else:
        if tokenizer is None:
            raise ValueError(f"a tokenizer is required to build the tiny architecture {spec.name!r}")
        config = ARCHITECTURES.get(spec.name)(spec, tokenizer)
        model = _model_class(config).from_config(config).to(dtype)
    is_encoder_decoder = bool(model.config.is_encoder_decoder)
    if not is_encoder_decoder:
        _ensure_decoder_only_tokens(model, tokenizer)
    _sync_special_ids(model, tokenizer)
    if spec.lora is not None:
        model = _with_lora(model, spec.lora, is_encoder_decoder)
    return model, tokenizer, is_encoder_decoder


def _model_class(config: PretrainedConfig) -> type:
    return AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM


def _ensure_decoder_only_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.sep_token is None:
        tokenizer.add_special_tokens({"sep_token": SPECIAL_TOKENS["sep_token"]})
        model.resize_token_embeddings(len(tokenizer))


def _sync_special_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    start = None
    if model.config.is_encoder_decoder:
        start = model.config.decoder_start_token_id
        if start is None:
            start = model.generation_config.decoder_start_token_id
    for config in (model.config, model.generation_config):
        for key, value in ids.items():
            setattr(config, key, value)
        if start is not None:
            config.decoder_start_token_id = start


def _with_lora(model: PreTrainedModel, lora: LoraSpec, is_encoder_decoder: bool) -> torch.nn.Module:
    try:
        import peft
    except ImportError as error:
        raise ConfigError("lora: needs the peft package (pip install 'dece[peft]')") from error
    config = peft.LoraConfig(
        task_type=peft.TaskType.SEQ_2_SEQ_LM if is_encoder_decoder else peft.TaskType.CAUSAL_LM,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules) if lora.target_modules else None,
    )
    try:
        return peft.get_peft_model(model, config)
    except ValueError as error:
        raise ConfigError(f"lora.target_modules: {error}") from error
