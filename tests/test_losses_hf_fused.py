"""fused_model_loss on tiny randomly initialised HF models equals the loss on ``model(...).logits``:
value and every parameter's gradient (fp64, 1e-9), for decoder-only, encoder-decoder, and the head
variants (tied/untied T5 rescaling, BART's final_logits_bias, Gemma-2 softcapping, Cohere's scale,
RoBERTa's head transform in an EncoderDecoderModel)."""

import pytest
import torch
import torch.nn.functional as F
import transformers as tf

from dece.losses import get_loss
from dece.losses import hf_fused
from dece.losses.hf_fused import fused_model_loss

V = 61


def _causal(name):
    common = dict(vocab_size=V, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=2, max_position_embeddings=32)
    if name == "llama":
        return tf.LlamaForCausalLM(tf.LlamaConfig(**common, tie_word_embeddings=False))
    if name == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=V, n_embd=16, n_layer=2, n_head=2, n_positions=32,
                                                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    if name == "gemma2":
        return tf.Gemma2ForCausalLM(tf.Gemma2Config(**common, head_dim=8, final_logit_softcapping=2.0))
    if name == "cohere":
        return tf.CohereForCausalLM(tf.CohereConfig(**common, logit_scale=0.3))
    return _more_causal(name, common)


def _more_causal(name, common):
    """Tiny configs of the other supported decoder-only classes (dropouts off: the two passes must agree)."""
    gptj = dict(vocab_size=V, n_embd=16, n_layer=2, n_head=2, n_positions=32, rotary_dim=4, resid_pdrop=0.0,
                embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False)
    moe = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, shared_expert_intermediate_size=16)
    builders = {
        # 4 heads: CodeGen's attention splits into 4 model-parallel groups in transformers <= 5.17
        "codegen": lambda: tf.CodeGenForCausalLM(tf.CodeGenConfig(**{**gptj, "n_head": 4, "rotary_dim": 2}, n_ctx=32)),
        "gptj": lambda: tf.GPTJForCausalLM(tf.GPTJConfig(**gptj)),
        "gpt_neo": lambda: tf.GPTNeoForCausalLM(tf.GPTNeoConfig(
            vocab_size=V, hidden_size=16, num_layers=2, num_heads=2, attention_types=[[["global", "local"], 1]],
            max_position_embeddings=32, window_size=4, resid_dropout=0.0, embed_dropout=0.0, attention_dropout=0.0)),
        "phi": lambda: tf.PhiForCausalLM(tf.PhiConfig(**common, resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0)),
        "qwen2_moe": lambda: tf.Qwen2MoeForCausalLM(tf.Qwen2MoeConfig(**common, **moe)),
        "qwen3_moe": lambda: tf.Qwen3MoeForCausalLM(tf.Qwen3MoeConfig(
            **common, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16)),
        "olmo": lambda: tf.OlmoForCausalLM(tf.OlmoConfig(**common)),
        "olmo2": lambda: tf.Olmo2ForCausalLM(tf.Olmo2Config(**common)),
        "stablelm": lambda: tf.StableLmForCausalLM(tf.StableLmConfig(**common, hidden_dropout=0.0, attention_dropout=0.0)),
        "falcon": lambda: tf.FalconForCausalLM(tf.FalconConfig(
            vocab_size=V, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, hidden_dropout=0.0,
            attention_dropout=0.0, max_position_embeddings=32, tie_word_embeddings=False)),
        "bloom": lambda: tf.BloomForCausalLM(tf.BloomConfig(
            vocab_size=V, hidden_size=16, n_layer=2, n_head=2, hidden_dropout=0.0, attention_dropout=0.0)),
        "opt": lambda: tf.OPTForCausalLM(tf.OPTConfig(
            vocab_size=V, hidden_size=16, num_hidden_layers=2, ffn_dim=32, num_attention_heads=2,
            max_position_embeddings=32, word_embed_proj_dim=16, dropout=0.0, attention_dropout=0.0,
            pad_token_id=1, bos_token_id=2, eos_token_id=2)),
    }
    return builders[name]()


def _seq2seq(name):
    if name.startswith("t5"):
        return tf.T5ForConditionalGeneration(tf.T5Config(
            vocab_size=V, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, dropout_rate=0.0,
            pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=name == "t5_tied"))
    if name == "bart":
        m = tf.BartForConditionalGeneration(tf.BartConfig(
            vocab_size=V, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
            dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, pad_token_id=1, bos_token_id=0,
            eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=None, forced_eos_token_id=None))
        m.final_logits_bias.normal_()  # zero at init: make it matter
        return m
    if name == "roberta2roberta":
        ids = dict(vocab_size=V, pad_token_id=1, bos_token_id=0, eos_token_id=2)
        def rob(**kw):
            return tf.RobertaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                    max_position_embeddings=40, **kw, **ids)
        cfg = tf.EncoderDecoderConfig.from_encoder_decoder_configs(rob(), rob(is_decoder=True, add_cross_attention=True))
        cfg.decoder_start_token_id, cfg.pad_token_id, cfg.vocab_size = 0, 1, V
        return tf.EncoderDecoderModel(cfg)
    raise KeyError(name)


def _batch(seq2seq, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, V, (2, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[1, -2:] = 0
    if seq2seq:
        labels = torch.randint(3, V, (2, 5), generator=g)
        labels[1, -1] = -100
    else:
        labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask}, labels


def _compare(model, seq2seq, loss, epoch=None, rtol=1e-9, atol=1e-12, dtype=torch.float64):
    torch.manual_seed(0)
    model = model.to(dtype).train()
    inputs, labels = _batch(seq2seq)
    params = [p for p in model.parameters() if p.requires_grad]
    out = fused_model_loss(model, inputs, labels, loss, epoch=epoch)
    grads = torch.autograd.grad(out, params, allow_unused=True)
    logits = model(**inputs, labels=labels, use_cache=False).logits  # the model derives decoder inputs itself
    target = labels if seq2seq else F.pad(labels[:, 1:], (0, 1), value=-100)
    ref = loss(logits, target, epoch)
    ref_grads = torch.autograd.grad(ref, params, allow_unused=True)
    torch.testing.assert_close(out, ref, rtol=rtol, atol=atol)
    for p, g, gr in zip(params, grads, ref_grads):
        if gr is None:
            assert g is None or torch.all(g == 0)
        else:
            torch.testing.assert_close(g, gr, rtol=rtol, atol=atol)
    return out


@pytest.mark.parametrize("name", ["llama", "gpt2", "gemma2", "cohere", "codegen", "gptj", "gpt_neo", "phi", "qwen2_moe",
                                  "qwen3_moe", "olmo", "olmo2", "stablelm", "falcon", "bloom", "opt"])
def test_decoder_only_matches_unfused(name):
    if name.endswith("_moe"):  # the grouped expert matmul has no float64 kernel: fp32, fp32 tolerances
        _compare(_causal(name), False, get_loss("dece", alpha_base=0.9), epoch=2, rtol=1e-4, atol=1e-6,
                 dtype=torch.float32)
    else:
        _compare(_causal(name), False, get_loss("dece", alpha_base=0.9), epoch=2)


@pytest.mark.filterwarnings("ignore:Version v4.12.0 introduces:FutureWarning")
@pytest.mark.parametrize("name", ["t5_tied", "t5_untied", "bart", "roberta2roberta"])
def test_encoder_decoder_matches_unfused(name):
    _compare(_seq2seq(name), True, get_loss("dece", alpha_base=0.9), epoch=2)


def test_other_losses_and_hf_ce_agree():
    model = _causal("llama")
    for name in ("gce", "sce"):
        _compare(model, False, get_loss(name))
    out = _compare(model, False, get_loss("ce"))
    inputs, labels = _batch(False)
    torch.testing.assert_close(out.float(), model(**inputs, labels=labels).loss)  # HF's own shifted CE (in fp32)


def test_mean_denominator_and_reduction_pass_through():
    model = _causal("gpt2").double()
    inputs, labels = _batch(False)
    loss = get_loss("dece", alpha=0.9, reduction="sum")
    total = fused_model_loss(model, inputs, labels, loss)
    mean = fused_model_loss(model, inputs, labels, get_loss("dece", alpha=0.9), mean_denominator=40)
    torch.testing.assert_close(mean, total / 40)


def test_unsupported_model_raises_and_names_supported_ones():
    model = tf.XGLMForCausalLM(tf.XGLMConfig(vocab_size=V, d_model=16, num_layers=1, attention_heads=2, ffn_dim=32,
                                             max_position_embeddings=32))
    inputs, labels = _batch(False)
    with pytest.raises(NotImplementedError, match="XGLMForCausalLM is not supported.*supported: .*LlamaForCausalLM"):
        fused_model_loss(model, inputs, labels, get_loss("ce"))


def test_source_drift_raises(monkeypatch):
    monkeypatch.setitem(hf_fused.RULES, "LlamaForCausalLM", hf_fused.HeadRule(("logits = self.lm_head(x)",)))
    hf_fused._verify_source.cache_clear()
    inputs, labels = _batch(False)
    with pytest.raises(NotImplementedError, match="computes its logits differently"):
        fused_model_loss(_causal("llama"), inputs, labels, get_loss("ce"))
    hf_fused._verify_source.cache_clear()


class _SlicedHead(torch.nn.Module):  # the head call of transformers 4.x-5.17 (logits_to_keep)
    def forward(self, hidden_states, logits_to_keep=0):
        slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, slice_indices, :])
        return logits


class _DroppedPositions(torch.nn.Module):
    def forward(self, hidden_states):
        logits = self.lm_head(hidden_states[:, 1:, :])
        return logits


def test_the_older_sliced_head_call_is_accepted_and_a_dropped_position_is_not():
    hf_fused._verify_source(_SlicedHead, hf_fused.HeadRule(), None)
    with pytest.raises(NotImplementedError, match="computes its logits differently"):
        hf_fused._verify_source(_DroppedPositions, hf_fused.HeadRule(), None)
    inputs, labels = _batch(False)  # a logits_to_keep that drops positions is refused by the shape check
    with pytest.raises(ValueError, match=r"the head saw hidden states \(2, 3, 16\) for labels \(2, 7\)"):
        fused_model_loss(_causal("llama"), {**inputs, "logits_to_keep": 3}, labels, get_loss("ce"))


def test_head_is_restored_after_an_error():
    model = _causal("llama")
    inputs, labels = _batch(False)
    with pytest.raises(IndexError):  # an id outside the embedding: the forward fails midway
        fused_model_loss(model, {"input_ids": inputs["input_ids"] + V}, labels, get_loss("ce"))
    assert "forward" not in model.lm_head.__dict__
    assert model(**inputs).logits.shape == (2, 7, V)


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_peft_lora_body_works_and_lora_head_is_refused():
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(_causal("llama"), peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p)  # B = 0 at init would make the adapters invisible
    _compare(model, False, get_loss("dece", alpha=0.9))
    head_lora = peft.get_peft_model(_causal("llama"), peft.LoraConfig(r=2, target_modules=["lm_head"]))
    inputs, labels = _batch(False)
    with pytest.raises(NotImplementedError, match="plain nn.Linear"):
        fused_model_loss(head_lora, inputs, labels, get_loss("ce"))


@pytest.mark.parametrize("find_unused", [True, False])
def test_ddp_wrapped_model_gets_the_same_gradients(tmp_path, find_unused):
    # One-process gloo DDP: with find_unused_parameters DDP walks the graph of the forward's outputs,
    # so the head's stand-in output must reach every parameter the loss uses.
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = _causal("gpt2").double()
        ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=find_unused)
        inputs, labels = _batch(False)
        loss = get_loss("dece", alpha=0.9)
        for _ in range(2):  # a second step fails if the first left the reducer in a bad state
            model.zero_grad()
            fused_model_loss(ddp, inputs, labels, loss).backward()
        got = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        loss(model(**inputs).logits, F.pad(labels[:, 1:], (0, 1), value=-100)).backward()
        for g, p in zip(got, model.parameters()):
            torch.testing.assert_close(g, p.grad, rtol=1e-9, atol=1e-12)
    finally:
        dist.destroy_process_group()
