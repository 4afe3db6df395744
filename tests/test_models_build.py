"""Every tiny architecture builds, trains (finite loss) and generates; hf: checkpoints load offline;
LoRA leaves only adapters trainable; bf16 weights."""

import copy
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # conftest sets it too: hf: names here are local paths, never the hub

import pytest
import torch

from dece.data.records import Example
from dece.errors import ConfigError
from dece.evaluation import generate
from dece.models import ARCHITECTURES, LoraSpec, ModelSpec, PadCollator, build_model, build_tokenizer, encode_examples

EXAMPLES = [
    Example(
        f"get the rows of table t{i} where id is {i}",
        f"def f(c):\n    c.execute('SELECT * FROM t{i} WHERE id = {i}')\n\treturn  c",
    )
    for i in range(6)
]
LORA_TARGETS = {"codebert-tiny": ("query", "value")}  # PEFT knows the others' defaults


def tiny_spec(name: str, **changes) -> ModelSpec:
    sizes = dict(d_model=32, layers=1, heads=2, ff=64, vocab_size=320, max_source_length=32, max_target_length=48)
    return ModelSpec(name=name, **{**sizes, **changes})


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer([e.src for e in EXAMPLES] + [e.tgt for e in EXAMPLES], vocab_size=320)


def batch_for(model_tokenizer, spec, is_encoder_decoder):
    rows = list(encode_examples(EXAMPLES[:3], model_tokenizer, spec, is_encoder_decoder))
    return PadCollator(model_tokenizer.pad_token_id)(rows)


@pytest.fixture(scope="module", params=ARCHITECTURES.names())
def built(request, tokenizer):
    torch.manual_seed(0)
    spec = tiny_spec(request.param)
    return (spec, *build_model(spec, tokenizer))


def test_architecture_trains_and_generates(built):
    spec, model, tokenizer, is_encoder_decoder = built
    assert is_encoder_decoder == (spec.name in {"t5-tiny", "bart-tiny", "codebert-tiny"})
    loss = model(**batch_for(tokenizer, spec, is_encoder_decoder)).loss
    assert torch.isfinite(loss)
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert all(".pooler." in n for n in unused)  # only RoBERTa's pooler, which seq2seq never uses
    sources = [e.src for e in EXAMPLES]
    outputs = generate(model, tokenizer, sources, is_encoder_decoder=is_encoder_decoder, max_new_tokens=8)
    assert len(outputs) == len(EXAMPLES) and all(isinstance(o, str) for o in outputs)


def test_special_ids_agree_with_tokenizer(built):
    _, model, tokenizer, is_encoder_decoder = built
    for config in (model.config, model.generation_config):
        assert config.pad_token_id == tokenizer.pad_token_id
        assert config.eos_token_id == tokenizer.eos_token_id
        assert config.bos_token_id == tokenizer.bos_token_id
        if is_encoder_decoder:
            assert config.decoder_start_token_id is not None
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)


def test_hf_path_round_trip(built, tmp_path):
    spec, model, tokenizer, is_encoder_decoder = built
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer, loaded_is_encoder_decoder = build_model(ModelSpec(name=f"hf:{tmp_path}"))
    assert type(loaded) is type(model) and loaded_is_encoder_decoder == is_encoder_decoder
    batch = batch_for(tokenizer, spec, is_encoder_decoder)
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, loaded(**batch).logits)
    kwargs = dict(is_encoder_decoder=is_encoder_decoder, max_new_tokens=6, progress=False)
    sources = [e.src for e in EXAMPLES]
    assert generate(loaded, loaded_tokenizer, sources, **kwargs) == generate(model, tokenizer, sources, **kwargs)


def test_lora_trains_only_adapters(built, tmp_path):
    spec, model, tokenizer, is_encoder_decoder = built
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lora = LoraSpec(r=4, target_modules=LORA_TARGETS.get(spec.name))
    wrapped, wrapped_tokenizer, _ = build_model(ModelSpec(name=f"hf:{tmp_path}", lora=lora))
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    loss = wrapped(**batch_for(wrapped_tokenizer, spec, is_encoder_decoder)).loss
    loss.backward()
    assert torch.isfinite(loss)
    outputs = generate(
        wrapped, wrapped_tokenizer, ["get rows"], is_encoder_decoder=is_encoder_decoder, max_new_tokens=4
    )
    assert isinstance(outputs[0], str)


def test_lora_on_a_tiny_model_from_scratch(tokenizer):
    model, _, _ = build_model(tiny_spec("llama-tiny", lora=LoraSpec(r=2)), tokenizer)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in model.parameters()) / 5


def test_lora_without_known_targets_names_the_field(tokenizer):
    with pytest.raises(ConfigError, match="lora.target_modules"):
        build_model(tiny_spec("codebert-tiny", lora=LoraSpec(r=2)), tokenizer)


@pytest.mark.parametrize("name", ["bart-tiny", "gpt2-tiny"])
def test_bfloat16(name, tokenizer):
    spec = tiny_spec(name, dtype="bfloat16")
    model, tok, is_encoder_decoder = build_model(spec, tokenizer)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert torch.isfinite(model(**batch_for(tok, spec, is_encoder_decoder)).loss)
    outputs = generate(model, tok, ["rows"], is_encoder_decoder=is_encoder_decoder, max_new_tokens=4, progress=False)
    assert isinstance(outputs[0], str)


def test_decoder_only_checkpoint_without_sep_or_pad_gets_them(tokenizer, tmp_path):
    spec = tiny_spec("gpt2-tiny")
    model, tok, _ = build_model(spec, copy.deepcopy(tokenizer))  # the module's tokenizer stays as built
    model.save_pretrained(tmp_path)
    tok.pad_token, tok.sep_token = None, None
    tok.save_pretrained(tmp_path)
    loaded, loaded_tokenizer, _ = build_model(ModelSpec(name=f"hf:{tmp_path}"))
    assert loaded_tokenizer.sep_token_id is not None
    assert loaded_tokenizer.pad_token_id == loaded_tokenizer.eos_token_id == loaded.config.pad_token_id
    assert loaded.get_input_embeddings().num_embeddings >= len(loaded_tokenizer)


def test_tokenizer_arguments_are_checked(tokenizer, tmp_path):
    with pytest.raises(ValueError, match="tokenizer"):
        build_model(tiny_spec("t5-tiny"))
    with pytest.raises(ConfigError, match="tokenizer"):
        build_model(ModelSpec(name=f"hf:{tmp_path}"), tokenizer)


@pytest.mark.parametrize("name", ["t5-tiny", "gpt2-tiny"])
def test_per_token_losses_batched_by_length_come_back_in_order(tokenizer, name):
    """The per-row pass (row_losses, the audit) batches rows by length; each row's token losses must equal
    those of the row alone, in the order given."""
    from dece.training.per_row import per_token_losses

    torch.manual_seed(0)
    spec = tiny_spec(name)
    model, tok, is_enc_dec = build_model(spec, tokenizer)
    examples = [Example(e.src * (1 + i % 3), e.tgt[: 10 + 7 * i]) for i, e in enumerate(EXAMPLES)]
    rows = list(encode_examples(examples, tok, spec, is_enc_dec))
    collate = PadCollator(tok.pad_token_id)
    batched = per_token_losses(model, rows, collate, is_encoder_decoder=is_enc_dec, batch_size=4)
    alone = [per_token_losses(model, [row], collate, is_encoder_decoder=is_enc_dec)[0] for row in rows]
    assert [len(x) for x in batched] == [len(x) for x in alone] and len(set(map(len, alone))) > 2
    for got, want in zip(batched, alone):
        assert got == pytest.approx(want, abs=1e-4)
