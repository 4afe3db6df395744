"""The byte-level BPE tokenizer keeps code exactly: newlines, tabs, runs of spaces, unicode."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from dece.errors import ConfigError
from dece.models import SPECIAL_TOKENS, build_tokenizer

CODE = [
    "def get_user(cursor, name):\n"
    '    cursor.execute("SELECT * FROM users WHERE name = %s", (name,))\n'
    "    return cursor.fetchall()\n",
    "class A:\n\tdef f(self):\n\t\treturn  {'k': [1,  2]}  # trailing  \n\n\n",
    "public int add(int a, int b) {\r\n    return a + b;\r\n}",
    "s = 'naïve café 中文 😀'\n        x  =  1\t\t# tab\n",
    "   leading spaces and trailing   ",
    "if x:\n    if y:\n        pass\n    else:\n        z = '</s> <pad> <s>'\n",
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(CODE * 3, vocab_size=400)


def plain(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def roundtrip(tokenizer, text: str) -> str:
    return tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True)


@pytest.mark.parametrize("text", CODE + ["", "\n", "\t", "    ", " \n \t \r\n"])
def test_realistic_code_round_trips(tokenizer, text):
    assert roundtrip(tokenizer, text) == text


_PIECES = st.one_of(
    st.text(),
    st.sampled_from(["\n", "\t", "    ", "\r\n", " ", "def ", "</s>", "<pad>", "<s>", "<sep>", "<unk>", "ä", "中"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_any_text_round_trips(tokenizer, text):
    assert roundtrip(tokenizer, text) == text


def test_text_that_looks_special_is_not_a_control_token(tokenizer):
    ids = tokenizer("x = '</s>'", add_special_tokens=False)["input_ids"]
    assert tokenizer.eos_token_id not in ids
    assert tokenizer("x")["input_ids"][-1] == tokenizer.eos_token_id  # the template appends eos


def test_special_tokens_and_no_cleanup(tokenizer):
    for attribute, text in SPECIAL_TOKENS.items():
        assert getattr(tokenizer, attribute) == text
    assert tokenizer.clean_up_tokenization_spaces is False
    assert tokenizer.decode(tokenizer("a , b .")["input_ids"], skip_special_tokens=True) == "a , b ."


def test_save_load_round_trip(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in CODE:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
        assert roundtrip(loaded, text) == text
    assert loaded.sep_token_id == tokenizer.sep_token_id
    assert loaded("'</s>'", add_special_tokens=False)["input_ids"] == plain(tokenizer, "'</s>'")


def test_vocab_is_learned_and_bounded(tokenizer):
    assert 256 + len(SPECIAL_TOKENS) < len(tokenizer) <= 400
    assert len(tokenizer("    return cursor.fetchall()")["input_ids"]) < len("    return cursor.fetchall()")


def test_too_small_vocab_is_rejected():
    with pytest.raises(ConfigError, match="vocab_size"):
        build_tokenizer(CODE, vocab_size=100)
