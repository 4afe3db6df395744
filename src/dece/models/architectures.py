"""Tiny architectures built from scratch: each is one function from a spec and a tokenizer to a HF config.

Adding an architecture is one registered function. Encoder-decoder configs (``is_encoder_decoder``)
are built with ``AutoModelForSeq2SeqLM``, the others with ``AutoModelForCausalLM``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from transformers import (
    BartConfig,
    EncoderDecoderConfig,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedTokenizerBase,
    RobertaConfig,
    T5Config,
)

from dece.registry import Registry

if TYPE_CHECKING:
    from dece.models.spec import ModelSpec

ConfigBuilder = Callable[["ModelSpec", PreTrainedTokenizerBase], PretrainedConfig]
ARCHITECTURES: Registry[ConfigBuilder] = Registry("architecture")


def _ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    return {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }


@ARCHITECTURES.register("t5-tiny")
def t5_tiny(spec: "ModelSpec", tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """T5 encoder-decoder (relative positions, so no length limit); decoding starts from ``pad``."""
    ids = _ids(tokenizer)
    return T5Config(
        d_model=spec.d_model,
        d_kv=spec.d_model // spec.heads,
        d_ff=spec.ff,
        num_layers=spec.layers,
        num_decoder_layers=spec.layers,
        num_heads=spec.heads,
        dropout_rate=spec.dropout,
        decoder_start_token_id=ids["pad_token_id"],
        **ids,
    )


@ARCHITECTURES.register("bart-tiny")
def bart_tiny(spec: "ModelSpec", tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """BART encoder-decoder; decoding starts from ``eos`` as in BART."""
    ids = _ids(tokenizer)
    return BartConfig(
        d_model=spec.d_model,
        encoder_layers=spec.layers,
        decoder_layers=spec.layers,
        encoder_attention_heads=spec.heads,
        decoder_attention_heads=spec.heads,
        encoder_ffn_dim=spec.ff,
        decoder_ffn_dim=spec.ff,
        max_position_embeddings=max(spec.max_source_length, spec.max_target_length),
        dropout=spec.dropout,
        decoder_start_token_id=ids["eos_token_id"],
        forced_bos_token_id=None,
        forced_eos_token_id=None,
        **ids,
    )


@ARCHITECTURES.register("gpt2-tiny")
def gpt2_tiny(spec: "ModelSpec", tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """GPT-2 decoder-only; the context holds prompt and target."""
    return GPT2Config(
        n_embd=spec.d_model,
        n_layer=spec.layers,
        n_head=spec.heads,
        n_inner=spec.ff,
        n_positions=spec.max_source_length + spec.max_target_length,
        resid_pdrop=spec.dropout,
        embd_pdrop=spec.dropout,
        attn_pdrop=spec.dropout,
        **_ids(tokenizer),
    )


@ARCHITECTURES.register("llama-tiny")
def llama_tiny(spec: "ModelSpec", tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """Llama decoder-only (RoPE, SwiGLU, RMSNorm); the context holds prompt and target."""
    return LlamaConfig(
        hidden_size=spec.d_model,
        intermediate_size=spec.ff,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=spec.max_source_length + spec.max_target_length,
        attention_dropout=spec.dropout,
        **_ids(tokenizer),
    )


@ARCHITECTURES.register("codebert-tiny")
def codebert_tiny(spec: "ModelSpec", tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """The paper's CodeBERT setup in miniature: a RoBERTa encoder and a Transformer decoder (RoBERTa
    layers with cross-attention) joined by ``EncoderDecoderModel``; decoding starts from ``bos``."""
    ids = _ids(tokenizer)

    def roberta(max_length: int, **decoder: bool) -> RobertaConfig:
        return RobertaConfig(
            hidden_size=spec.d_model,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            intermediate_size=spec.ff,
            hidden_dropout_prob=spec.dropout,
            attention_probs_dropout_prob=spec.dropout,
            max_position_embeddings=max_length + ids["pad_token_id"] + 1,  # RoBERTa positions start after pad
            **decoder,
            **ids,
        )

    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        roberta(spec.max_source_length), roberta(spec.max_target_length, is_decoder=True, add_cross_attention=True)
    )
    config.decoder_start_token_id = ids["bos_token_id"]
    config.pad_token_id = ids["pad_token_id"]
    config.eos_token_id = ids["eos_token_id"]
    config.vocab_size = ids["vocab_size"]
    return config
