"""Examples -> ids: seq2seq labels are target + eos; decoder-only labels mask the prompt; padding."""

import pytest
import torch

from dece.data.records import Example
from dece.models import IGNORE_INDEX, ModelSpec, PadCollator, build_tokenizer, encode_examples, encode_sources

EXAMPLES = [Example("sum two numbers", "def add(a, b):\n\treturn a + b\n"), Example("noop", "pass"), Example("", "")]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer([e.src for e in EXAMPLES] + [e.tgt for e in EXAMPLES], vocab_size=300)


def plain(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_seq2seq_rows(tokenizer):
    data = encode_examples(EXAMPLES, tokenizer, ModelSpec(vocab_size=300), is_encoder_decoder=True)
    assert len(data) == 3
    for index, (example, row) in enumerate(zip(EXAMPLES, data)):
        assert row["input_ids"] == plain(tokenizer, example.src) + [tokenizer.eos_token_id]
        assert row["labels"] == plain(tokenizer, example.tgt) + [tokenizer.eos_token_id]
        assert row["attention_mask"] == [1] * len(row["input_ids"])
        assert row["row_index"] == index


def test_decoder_only_masks_the_prompt_and_not_the_target(tokenizer):
    data = encode_examples(EXAMPLES, tokenizer, ModelSpec(name="gpt2-tiny", vocab_size=300), is_encoder_decoder=False)
    for example, row in zip(EXAMPLES, data):
        prompt = [tokenizer.bos_token_id] + plain(tokenizer, example.src) + [tokenizer.sep_token_id]
        target = plain(tokenizer, example.tgt) + [tokenizer.eos_token_id]
        assert row["input_ids"] == prompt + target
        assert row["labels"] == [IGNORE_INDEX] * len(prompt) + target  # not shifted
        assert len(row["attention_mask"]) == len(row["input_ids"])


@pytest.mark.parametrize("is_encoder_decoder", [True, False])
def test_truncation_keeps_special_tokens_and_limits(tokenizer, is_encoder_decoder):
    long = Example("word " * 50, "x = 1\n" * 50)
    spec = ModelSpec(vocab_size=300, max_source_length=8, max_target_length=5)
    (row,) = encode_examples([long], tokenizer, spec, is_encoder_decoder)
    labels = [t for t in row["labels"] if t != IGNORE_INDEX]
    assert len(labels) == 5 and labels[-1] == tokenizer.eos_token_id
    source = row["input_ids"] if is_encoder_decoder else row["input_ids"][: len(row["input_ids"]) - len(labels)]
    assert len(source) == 8
    assert source[-1] == (tokenizer.eos_token_id if is_encoder_decoder else tokenizer.sep_token_id)
    assert labels[:-1] == plain(tokenizer, long.tgt)[:4]


def test_encode_sources_without_limit(tokenizer):
    (ids,) = encode_sources(tokenizer, ["word " * 50], None, is_encoder_decoder=False)
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.sep_token_id
    assert ids[1:-1] == plain(tokenizer, "word " * 50)


def test_collator_pads_right_and_left():
    rows = [
        {"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [-100, 6, 7], "row_index": 4},
        {"input_ids": [8], "attention_mask": [1], "labels": [8], "row_index": 9},
    ]
    right = PadCollator(pad_token_id=0)(rows)
    assert set(right) == {"input_ids", "attention_mask", "labels"}
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert right["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    left = PadCollator(pad_token_id=0, padding_side="left", keep_row_index=True)(rows)
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert left["row_index"].tolist() == [4, 9] and left["row_index"].dtype == torch.long


def test_collator_rejects_unknown_side():
    with pytest.raises(ValueError, match="padding_side"):
        PadCollator(pad_token_id=0, padding_side="middle")
