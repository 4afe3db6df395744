"""Train a byte-level BPE tokenizer on the task's own text, offline, so code round-trips exactly."""

from __future__ import annotations

from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from dece.errors import ConfigError
from dece.models.spec import MIN_VOCAB_SIZE, SPECIAL_TOKENS  # noqa: F401  (re-exported)

def build_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    *,
    special_tokens: dict[str, str] = SPECIAL_TOKENS,
    min_frequency: int = 2,
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts`` (sources and targets of the training split).

    Nothing is normalised or stripped and the decoder does no clean-up, so
    ``decode(encode(x), skip_special_tokens=True) == x`` for any string, newlines, tabs, runs of
    spaces and non-ASCII included. Special tokens get the first ids in the order of ``special_tokens``
    (``special_tokens`` must contain the keys of :data:`SPECIAL_TOKENS`). Text that merely *looks* like
    a special token (``"</s>"`` inside code, or a trigger) is encoded as plain bytes, never as the
    control token. ``tokenizer(text)`` appends ``eos`` (the seq2seq source convention).
    """
    missing = sorted(set(SPECIAL_TOKENS) - set(special_tokens))
    if missing:
        raise ConfigError(f"special_tokens is missing {', '.join(missing)}")
    if vocab_size < 256 + len(special_tokens):
        raise ConfigError(f"vocab_size must be at least {256 + len(special_tokens)}, got {vocab_size}")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    eos = special_tokens["eos_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", special_tokens=[(eos, backend.token_to_id(eos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        clean_up_tokenization_spaces=False,
        split_special_tokens=True,
        **special_tokens,
    )
