"""Models and tokenisation: tiny architectures built from scratch or ``hf:`` checkpoints, a byte-level
BPE tokenizer that keeps code's whitespace, and the encoding/padding of examples for training.

Names are imported on first use (PEP 562), so ``from dece.models.spec import ModelSpec`` (the config
schema) does not import transformers."""

from __future__ import annotations

from dece.lazy import lazy_exports

_EXPORTS = {
    "ARCHITECTURES": "dece.models.architectures",
    "build_model": "dece.models.build",
    "IGNORE_INDEX": "dece.models.encoding",
    "EncodedDataset": "dece.models.encoding",
    "PadCollator": "dece.models.encoding",
    "encode_examples": "dece.models.encoding",
    "encode_sources": "dece.models.encoding",
    "encode_targets": "dece.models.encoding",
    "LoraSpec": "dece.models.spec",
    "ModelSpec": "dece.models.spec",
    "SPECIAL_TOKENS": "dece.models.spec",
    "build_tokenizer": "dece.models.tokenizer",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
