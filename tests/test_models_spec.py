"""ModelSpec and LoraSpec validate at construction and name the field at fault."""

import pytest

from dece.errors import ConfigError
from dece.models import ARCHITECTURES, LoraSpec, ModelSpec


def test_defaults_are_valid_and_every_architecture_is_accepted():
    assert ModelSpec().name == "t5-tiny"
    assert set(ARCHITECTURES.names()) == {"t5-tiny", "bart-tiny", "gpt2-tiny", "llama-tiny", "codebert-tiny"}
    for name in ARCHITECTURES:
        assert not ModelSpec(name=name).is_pretrained


def test_pretrained_names():
    spec = ModelSpec(name="hf:Salesforce/codet5-small")
    assert spec.is_pretrained and spec.checkpoint == "Salesforce/codet5-small"
    with pytest.raises(ValueError):
        ModelSpec().checkpoint


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"name": "gpt5"}, "name"),
        ({"name": "hf:"}, "name"),
        ({"d_model": 0}, "d_model"),
        ({"layers": -1}, "layers"),
        ({"heads": 3}, "heads"),
        ({"ff": 1.5}, "ff"),
        ({"vocab_size": 100}, "vocab_size"),
        ({"max_source_length": 0}, "max_source_length"),
        ({"max_target_length": True}, "max_target_length"),
        ({"dropout": 1.0}, "dropout"),
        ({"dtype": "float16"}, "dtype"),
        ({"lora": {"r": 4}}, "lora"),
    ],
)
def test_invalid_fields_are_named(changes, field):
    with pytest.raises(ConfigError, match=field):
        ModelSpec(**changes)


@pytest.mark.parametrize(
    "changes, field",
    [({"r": 0}, "lora.r"), ({"alpha": 0}, "lora.alpha"), ({"dropout": -0.1}, "lora.dropout"),
     ({"target_modules": "q"}, "lora.target_modules"), ({"target_modules": []}, "lora.target_modules")],
)
def test_invalid_lora_fields_are_named(changes, field):
    with pytest.raises(ConfigError, match=field):
        LoraSpec(**changes)


def test_from_dict_with_nested_lora_and_unknown_keys():
    spec = ModelSpec.from_dict({"name": "gpt2-tiny", "d_model": 64, "lora": {"r": 4, "target_modules": ["c_attn"]}})
    assert spec.lora == LoraSpec(r=4, target_modules=("c_attn",))
    with pytest.raises(ConfigError, match="d_modle"):
        ModelSpec.from_dict({"d_modle": 64})
    with pytest.raises(ConfigError, match="lora.rank"):
        ModelSpec.from_dict({"lora": {"rank": 4}})
