"""Models and tokenisation: tiny architectures built from scratch or ``hf:`` checkpoints, a byte-level
BPE tokenizer that keeps code's whitespace, and the encoding/padding of examples for training."""

from dece.models.architectures import ARCHITECTURES
from dece.models.build import build_model
from dece.models.encoding import (
    IGNORE_INDEX,
    EncodedDataset,
    PadCollator,
    encode_examples,
    encode_sources,
    encode_targets,
)
from dece.models.spec import LoraSpec, ModelSpec
from dece.models.tokenizer import SPECIAL_TOKENS, build_tokenizer

__all__ = [
    "ARCHITECTURES",
    "IGNORE_INDEX",
    "EncodedDataset",
    "LoraSpec",
    "ModelSpec",
    "PadCollator",
    "SPECIAL_TOKENS",
    "build_model",
    "build_tokenizer",
    "encode_examples",
    "encode_sources",
    "encode_targets",
]
