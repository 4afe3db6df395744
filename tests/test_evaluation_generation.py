"""generate(): memorised targets come back exactly (whitespace included), in order, the same for any
batch size, with only the continuation of decoder-only prompts."""

import pytest
import torch

from dece.data.records import Example
from dece.evaluation import generate
from dece.models import ModelSpec, PadCollator, build_model, build_tokenizer, encode_examples

EXAMPLES = [
    Example("add two", "def add(a, b):\n\treturn a + b\n"),
    Example(
        "get user rows by name",
        'def q(c, n):\n    c.execute("SELECT * FROM users WHERE name = ?", (n,))\n    return  c.fetchall()',
    ),
    Example("noop", "pass"),
    Example("unicode ä", "s = 'ä  中'\n"),
]
SOURCES = [e.src for e in EXAMPLES]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(SOURCES + [e.tgt for e in EXAMPLES], vocab_size=300)


def memorise(name, tokenizer):
    """A tiny model trained (full batch, AdamW) until it reproduces the four targets."""
    torch.manual_seed(0)
    spec = ModelSpec(name=name, d_model=64, layers=2, heads=2, ff=128, vocab_size=300, dropout=0.0,
                     max_source_length=32, max_target_length=96)
    model, tokenizer, is_encoder_decoder = build_model(spec, tokenizer)
    batch = PadCollator(tokenizer.pad_token_id)(list(encode_examples(EXAMPLES, tokenizer, spec, is_encoder_decoder)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(200):
        loss = model(**batch).loss
        if loss.item() < 0.01:
            break
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, tokenizer, is_encoder_decoder


# t5-tiny is left out: it needs several hundred steps here (it does build and generate: test_models_build)
@pytest.fixture(scope="module", params=["bart-tiny", "codebert-tiny", "gpt2-tiny", "llama-tiny"])
def trained(request, tokenizer):
    return memorise(request.param, tokenizer)


def test_memorised_targets_come_back_exactly(trained, capsys):
    model, tokenizer, is_encoder_decoder = trained
    model.train()
    outputs = generate(model, tokenizer, SOURCES, is_encoder_decoder=is_encoder_decoder, max_new_tokens=96)
    assert outputs == [e.tgt for e in EXAMPLES]
    assert "generate" in capsys.readouterr().err  # the progress bar
    assert model.training  # generate() restores the mode it found


def test_batch_size_beams_and_order_do_not_change_results(trained):
    model, tokenizer, is_encoder_decoder = trained
    kwargs = dict(is_encoder_decoder=is_encoder_decoder, max_new_tokens=96, progress=False)
    reference = generate(model, tokenizer, SOURCES, batch_size=32, **kwargs)
    assert generate(model, tokenizer, SOURCES, batch_size=1, **kwargs) == reference
    assert generate(model, tokenizer, SOURCES[::-1], batch_size=3, **kwargs) == reference[::-1]
    assert generate(model, tokenizer, SOURCES, batch_size=2, num_beams=3, **kwargs) == reference
    assert generate(model, tokenizer, SOURCES, batch_size=2, **kwargs) == reference  # deterministic


def test_max_new_tokens_bounds_the_output(trained):
    model, tokenizer, is_encoder_decoder = trained
    kwargs = dict(is_encoder_decoder=is_encoder_decoder, max_new_tokens=3, progress=False)
    (output,) = generate(model, tokenizer, SOURCES[1:2], **kwargs)
    assert len(tokenizer(output, add_special_tokens=False)["input_ids"]) <= 3
    assert EXAMPLES[1].tgt.startswith(output)


def test_empty_input_and_bad_arguments(tokenizer):
    spec = ModelSpec(name="gpt2-tiny", d_model=32, layers=1, heads=2, ff=64, vocab_size=300)
    model, tok, is_encoder_decoder = build_model(spec, tokenizer)
    assert generate(model, tok, [], is_encoder_decoder=is_encoder_decoder, max_new_tokens=4, progress=False) == []
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, tok, SOURCES, is_encoder_decoder=is_encoder_decoder, max_new_tokens=0)


def test_no_progress_bars_in_worker_processes(monkeypatch):
    from dece.evaluation import generation

    assert generation._bar_disabled(None) is False
    assert generation._bar_disabled(False) is True and generation._bar_disabled(True) is False
    monkeypatch.setattr(generation, "PROGRESS_BARS", False)  # as a run's worker processes set it
    assert generation._bar_disabled(None) is True
