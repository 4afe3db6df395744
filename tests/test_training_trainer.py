"""The Trainer integration: gradient accumulation equals the large batch, labels are shifted for
decoder-only models only, and the epoch comes from the trainer state."""

from types import SimpleNamespace

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
    TrainingArguments,
)

from dece.errors import ConfigError
from dece.losses import get_loss
from dece.training import DeceTrainer, epoch_from_state
from dece.training.trainer import shift_for_causal_lm

VOCAB = 61
PAD = 0


def tiny_model(kind: str):
    torch.manual_seed(0)
    if kind == "t5":
        cfg = T5Config(vocab_size=VOCAB, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                       dropout_rate=0.0, pad_token_id=PAD, eos_token_id=1, decoder_start_token_id=PAD)
        return T5ForConditionalGeneration(cfg)
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=VOCAB, n_embd=16, n_layer=1, n_head=2, n_positions=64,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=PAD)
        return GPT2LMHeadModel(cfg)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, pad_token_id=PAD)
    return LlamaForCausalLM(cfg)


class Rows(torch.utils.data.Dataset):
    """8 rows whose target lengths differ a lot, so a mean of micro-batch means would be wrong."""

    def __init__(self, encoder_decoder: bool):
        g = torch.Generator().manual_seed(1)
        self.rows = []
        for i in range(8):
            src = torch.randint(2, VOCAB, (3 + i % 3,), generator=g)
            tgt = torch.randint(2, VOCAB, (1 + 3 * (i % 5),), generator=g)  # halves: 22 vs 25 tokens
            if encoder_decoder:
                self.rows.append({"input_ids": src, "labels": tgt})
            else:
                ids = torch.cat([src, tgt])
                labels = torch.cat([torch.full_like(src, -100), tgt])
                self.rows.append({"input_ids": ids, "labels": labels})

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def collate(rows):
    def pad(key, value):
        width = max(len(r[key]) for r in rows)
        return torch.stack([torch.cat([r[key], torch.full((width - len(r[key]),), value)]) for r in rows])

    batch = {"input_ids": pad("input_ids", PAD), "labels": pad("labels", -100)}
    batch["attention_mask"] = (torch.arange(batch["input_ids"].shape[1])[None] <
                               torch.tensor([len(r["input_ids"]) for r in rows])[:, None]).long()
    return batch


def one_step_delta(kind, loss, batch_size, accumulation, tmp_path, fused_head=False):
    model = tiny_model(kind)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = TrainingArguments(
        output_dir=str(tmp_path / f"{kind}-{batch_size}-{accumulation}"),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        learning_rate=0.5,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        train_sampling_strategy="sequential",
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer = DeceTrainer(model=model, args=args, train_dataset=Rows(kind == "t5"), data_collator=collate,
                          loss=loss, optimizers=(optimizer, None), fused_head=fused_head)
    trainer.train()
    return {n: p.detach() - before[n] for n, p in model.named_parameters()}


def manual_delta(kind, loss, lr=0.5):
    """The large-batch gradient, computed by hand: token mean of the loss over all 8 rows, epoch 1.
    (Deltas are differences of O(1) fp32 parameters, hence atol 1e-6 against deltas of ~1e-3.)"""
    model = tiny_model(kind)
    batch = collate([Rows(kind == "t5")[i] for i in range(8)])
    labels = batch.pop("labels")
    if kind == "t5":
        batch["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=labels)
        logits, target = model(**batch).logits, labels
    else:
        logits, target = model(**batch).logits[:, :-1], labels[:, 1:]
    value = loss(logits, target, 1 if loss.epoch_aware else None)
    grads = torch.autograd.grad(value, list(model.parameters()))
    return {n: -lr * g for (n, _), g in zip(model.named_parameters(), grads)}


@pytest.mark.parametrize("kind", ["t5", "gpt2", "llama"])
@pytest.mark.parametrize("loss_name", ["dece", "gce"])
def test_accumulation_equals_large_batch_equals_hand_computed(kind, loss_name, tmp_path):
    loss = get_loss(loss_name, **({"alpha_base": 0.9} if loss_name == "dece" else {}))
    big = one_step_delta(kind, loss, 8, 1, tmp_path)
    accumulated = one_step_delta(kind, loss, 4, 2, tmp_path)
    by_hand = manual_delta(kind, loss)
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], rtol=1e-4, atol=1e-6, msg=name)
        torch.testing.assert_close(big[name], by_hand[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("kind", ["t5", "llama"])
@pytest.mark.parametrize("fused_head", [False, True])
def test_authors_compat_divides_by_all_positions_inside_the_trainer(kind, fused_head, tmp_path):
    """The authors divide by every position of the batch, padding included: honoured by the Trainer
    (one process, no accumulation: their setting), not replaced by its token count."""
    compat = get_loss("dece", alpha_base=0.9, authors_compat=True)
    trained = one_step_delta(kind, compat, 8, 1, tmp_path / "compat", fused_head=fused_head)
    by_hand = manual_delta(kind, compat)
    tokens = manual_delta(kind, get_loss("dece", alpha_base=0.9))
    for name in trained:
        torch.testing.assert_close(trained[name], by_hand[name], rtol=1e-4, atol=1e-6, msg=name)
    assert any(not torch.allclose(trained[n], tokens[n], rtol=1e-3, atol=1e-6) for n in trained)


@pytest.mark.parametrize("kind", ["t5", "llama"])
def test_fused_head_option_gives_the_same_update(kind, tmp_path):
    loss = get_loss("dece", alpha_base=0.9)
    plain = one_step_delta(kind, loss, 4, 2, tmp_path / "plain")
    fused = one_step_delta(kind, loss, 4, 2, tmp_path / "fused", fused_head=True)
    for name in plain:
        torch.testing.assert_close(fused[name], plain[name], rtol=1e-4, atol=1e-6, msg=name)


def test_epoch_from_state():
    assert epoch_from_state(SimpleNamespace(epoch=0.0)) == 1
    assert epoch_from_state(SimpleNamespace(epoch=0.99)) == 1
    assert epoch_from_state(SimpleNamespace(epoch=1.0)) == 2
    assert epoch_from_state(SimpleNamespace(epoch=None)) == 1
    assert epoch_from_state(SimpleNamespace(epoch=1.5), "continuous") == 2.5
    with pytest.raises(ValueError, match="epoch_mode"):
        epoch_from_state(SimpleNamespace(epoch=0), "per-step")


def test_shift_for_causal_lm():
    labels = torch.tensor([[-100, 5, 6, 7]])
    assert shift_for_causal_lm(labels).tolist() == [[5, 6, 7, -100]]


def test_loss_sees_epochs_counted_from_one(tmp_path):
    seen = []
    loss = get_loss("dece", alpha_base=0.9)
    original = loss.row_math

    def spy(vocab, epoch):
        seen.append(epoch)
        return original(vocab, epoch)

    loss.row_math = spy
    model = tiny_model("gpt2")
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, num_train_epochs=3,
                             use_cpu=True, report_to=[], save_strategy="no", logging_strategy="no",
                             disable_tqdm=True)
    DeceTrainer(model=model, args=args, train_dataset=Rows(False), data_collator=collate, loss=loss).train()
    assert seen == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]


def test_group_by_length_batches_rows_of_similar_total_length(tmp_path):
    """A seq2seq dataset whose source lengths say nothing about the target lengths: grouping must look
    at input plus labels; every epoch still visits every row once."""

    class Mixed(torch.utils.data.Dataset):
        def __init__(self):
            g = torch.Generator().manual_seed(3)
            self.rows = [{"input_ids": torch.randint(2, VOCAB, (4,), generator=g),
                          "labels": torch.randint(2, VOCAB, (int(n),), generator=g)}
                         for n in torch.randint(1, 40, (400,), generator=g)]

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, i):
            return self.rows[i]

    def padded_label_tokens(group_by_length):
        args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, use_cpu=True,
                                 report_to=[], disable_tqdm=True, seed=0)
        trainer = DeceTrainer(model=tiny_model("t5"), args=args, train_dataset=Mixed(), data_collator=collate,
                              loss=get_loss("ce"), group_by_length=group_by_length)
        batches = list(trainer.get_train_dataloader())
        assert sum(len(b["labels"]) for b in batches) == 400
        return sum(b["labels"].numel() for b in batches)

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], disable_tqdm=True)
    odd = DeceTrainer(model=tiny_model("t5"), args=args, train_dataset=[(1, 2)], data_collator=collate,
                      loss=get_loss("ce"), group_by_length=True)
    with pytest.raises(ConfigError, match="group_by_length needs training rows"):
        odd.get_train_dataloader()
    actual = sum(len(r["labels"]) for r in Mixed().rows)
    grouped, shuffled = padded_label_tokens(True), padded_label_tokens(False)
    assert grouped < 1.15 * actual < shuffled


def test_resume_does_not_warn_about_a_tied_output_head(tmp_path, monkeypatch):
    import collections

    import transformers.trainer as hf_trainer

    model = tiny_model("gpt2")  # GPT-2 ties its output head to the token embedding
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no")
    trainer = DeceTrainer(model=model, args=args, train_dataset=Rows(False), data_collator=collate,
                          loss=get_loss("dece", alpha_base=0.9))
    warnings = []
    monkeypatch.setattr(hf_trainer.logger, "warning", lambda message, *a, **k: warnings.append(str(message)))
    Result = collections.namedtuple("Result", "missing_keys unexpected_keys")
    trainer._issue_warnings_after_load(Result(["lm_head.weight"], []))
    assert warnings == []
    trainer._issue_warnings_after_load(Result(["transformer.h.0.mlp.c_fc.weight"], []))
    assert len(warnings) == 1 and "c_fc" in warnings[0]  # a real missing key is still reported
