"""A per-GPU memory estimate for training an ``hf:`` model, from its configuration alone (no weights are
read or downloaded): what `dece run --dry-run` prints before a user books a GPU.

The model is instantiated on PyTorch's ``meta`` device (shapes, no storage), LoRA adapters included, so the
parameter counts are exact for any architecture transformers knows. The rest is arithmetic, per device
under data parallelism (every GPU holds a full replica and ``train.batch_size`` rows):

- weights: all parameters in ``model.dtype``; gradients and AdamW's two moment buffers: the trainable ones,
  in the same dtype (torch's AdamW keeps its states in the parameters' dtype);
- activations kept for backward, per transformer layer, ``s * b * h * (34 + 5 * a * s / h)`` bytes with
  16-bit activations and no recomputation (Korthikanti et al., "Reducing Activation Recomputation in Large
  Transformer Models", MLSys 2023, Eq. 2), doubled for float32; a decoder-only model sees source + target
  tokens, an encoder-decoder its source in the encoder and its target in the decoder (cross-attention not
  counted);
- logits: the model's output logits and their gradient, ``2 * b * s_out * V`` values in the weights' dtype;
  with ``train.fused_head`` only one chunk of fp32 logits exists (three such buffers, see
  :func:`dece.losses.fused.default_fused_chunk_rows`).

It leaves out the CUDA context (~0.5-1 GiB), allocator fragmentation and temporary buffers: plan headroom.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from dece.errors import ConfigError
from dece.models.spec import ModelSpec

GIB = 1024 ** 3
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU by component (see the module doc for the formulas), and the parameter counts."""

    params: int
    trainable: int
    weights: int
    gradients: int
    optimizer: int
    activations: int
    logits: int
    logits_fused: int

    @property
    def total(self) -> int:
        """Everything, with the logits materialised."""
        return self.weights + self.gradients + self.optimizer + self.activations + self.logits

    @property
    def total_fused(self) -> int:
        """Everything, with ``train.fused_head`` (one chunk of logits)."""
        return self.total - self.logits + self.logits_fused

    def lines(self) -> list[str]:
        """Human-readable lines (GiB)."""
        g = lambda n: f"{n / GIB:.1f} GiB"  # noqa: E731
        return [
            f"parameters {self.params / 1e9:.2f}B, trainable {self.trainable / 1e6:.1f}M",
            f"weights {g(self.weights)}, gradients {g(self.gradients)}, AdamW states {g(self.optimizer)}, "
            f"activations {g(self.activations)}, logits {g(self.logits)} (fused head: {g(self.logits_fused)})",
            f"total per GPU ~{g(self.total)}; with train.fused_head ~{g(self.total_fused)} "
            "(plus the CUDA context and fragmentation)",
        ]


def load_architecture(spec: ModelSpec, arch_config: str | Path | None = None):
    """The ``transformers`` configuration of an ``hf:`` model without network: the local copy (a folder, or
    the Hugging Face cache), else ``arch_config``, a ``config.json`` shipped beside the experiment config.

    Raises:
        ConfigError: neither is available (names both places).
    """
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(spec.checkpoint, local_files_only=True)
    except (OSError, ValueError):
        if arch_config is not None and Path(arch_config).is_file():
            return AutoConfig.from_pretrained(str(arch_config))
    raise ConfigError(f"model: no local configuration of {spec.checkpoint!r} (not a folder, not in the Hugging Face "
                      f"cache) and model.arch_config {str(arch_config) if arch_config else 'unset'} is not a file")


def _layers_and_width(config) -> tuple[int, int, int, int]:
    """(encoder layers, decoder layers, hidden size, attention heads) under the common attribute names."""
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None) or config.n_embd
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "num_heads", None) or config.n_head
    if config.is_encoder_decoder:
        enc = getattr(config, "num_layers", None) or config.encoder_layers
        dec = getattr(config, "num_decoder_layers", None) or getattr(config, "decoder_layers", None) or enc
        return enc, dec, hidden, heads
    return 0, getattr(config, "num_hidden_layers", None) or config.n_layer, hidden, heads


def _activation_bytes(layers: int, s: int, b: int, h: int, a: int, width: int) -> int:
    return int(layers * s * b * h * (34 + 5 * a * s / h) * width / 2)


def estimate_memory(spec: ModelSpec, batch_size: int, arch_config: str | Path | None = None) -> MemoryEstimate:
    """The per-GPU memory estimate of training ``spec`` with ``batch_size`` rows per device.

    Args:
        spec: an ``hf:`` model (lengths, dtype and LoRA are read from it).
        batch_size: rows per device (``train.batch_size``).
        arch_config: a ``config.json`` to use when the checkpoint is not on this machine.

    Returns:
        A :class:`MemoryEstimate` (bytes).

    Raises:
        ConfigError: the model's configuration is not available offline (see :func:`load_architecture`).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from dece.losses.fused import default_fused_chunk_rows
    from dece.models.build import _with_lora

    config = load_architecture(spec, arch_config)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecation notes of transformers/peft internals
        cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = cls.from_config(config)
        if spec.lora is not None:
            model = _with_lora(model, spec.lora, bool(config.is_encoder_decoder))
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    width = _DTYPE_BYTES[spec.dtype]
    enc, dec, h, a = _layers_and_width(config)
    src, tgt = spec.max_source_length, spec.max_target_length
    if config.is_encoder_decoder:
        activations = _activation_bytes(enc, src, batch_size, h, a, width) + _activation_bytes(dec, tgt, batch_size, h, a, width)
        out_rows = batch_size * tgt
    else:
        activations = _activation_bytes(dec, src + tgt, batch_size, h, a, width)
        out_rows = batch_size * (src + tgt)
    vocab = config.vocab_size
    return MemoryEstimate(
        params=params, trainable=trainable, weights=params * width, gradients=trainable * width,
        optimizer=2 * trainable * width, activations=activations, logits=2 * out_rows * vocab * width,
        logits_fused=3 * default_fused_chunk_rows(vocab, out_rows, torch.device("cuda")) * vocab * 4,
    )
