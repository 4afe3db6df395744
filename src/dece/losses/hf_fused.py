"""Any loss of the family fused with a Hugging Face model's output head: no (tokens x V) logits.

    loss = fused_model_loss(model, batch, labels, get_loss("dece"), epoch=epoch)
    loss.backward()

equals ``get_loss("dece")(model(**batch).logits, labels)`` (labels shifted for decoder-only models, as
HF does) in value and in every parameter's gradient. In a ``Trainer``, ``compute_loss`` calls it in
place of the model's own loss (pass ``num_items_in_batch`` as ``mean_denominator``).

How: the model runs its own ``forward`` (through any DDP/PEFT wrapper, so gradient synchronisation and
adapters work) with the output head's ``forward`` swapped for one that records its input and returns a
(..., 1) stand-in instead of the logits. Whatever the model does *before* the head (final norm, T5's
``d_model**-0.5`` rescaling, RoBERTa's dense/gelu/norm head transform, encoder-decoder wiring) is thus
its own code. What it does *after* the head must be known: each supported class has a rule (plain, a
logit scale, final logit softcapping, a ``final_logits_bias``), and the rule is checked against the
class's installed source the first time it is used, so a transformers version that changes it raises
instead of giving a silently different loss. Unsupported classes raise and name the supported ones.
"""

from __future__ import annotations

import functools
import inspect
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dece.losses.base import TokenLoss
from dece.losses.fused import FusedLinearLoss

_PLAIN = ("logits = self.lm_head(hidden_states)",)


@dataclass(frozen=True)
class HeadRule:
    """What a model class does between its output head and its loss.

    ``post``: the normalised source lines of ``forward`` from the head call to the loss, as read from the
    transformers version the rule was written for (checked at first use). ``scale``/``softcap`` read
    the logit multiplier / final softcap from the model; ``extra_bias`` names a (1, V) buffer added to
    the logits; ``seq2seq``: labels are the decoder's (no shift) and ``decoder_input_ids`` come from them.
    """

    post: tuple[str, ...] = _PLAIN
    scale: Callable[[nn.Module], float] | None = None
    softcap: Callable[[nn.Module], float | None] | None = None
    extra_bias: str | None = None
    seq2seq: bool = False
    head_module_post: tuple[str, str, tuple[str, ...]] | None = None  # (attr, call regex, lines) of a head module
    checks: tuple[str, ...] = field(default=())  # lines ``forward`` must contain (encoder-decoder wrappers)


_GEMMA_SOFTCAP = (
    "logits = self.lm_head(hidden_states)",
    "if self.config.final_logit_softcapping is not None:",
    "logits = logits / self.config.final_logit_softcapping",
    "logits = torch.tanh(logits)",
    "logits = logits * self.config.final_logit_softcapping",
)
_BART = ("lm_logits = self.lm_head(outputs[0])", "lm_logits = lm_logits + self.final_logits_bias.to(lm_logits.device)")

RULES: dict[str, HeadRule] = {
    **{
        name: HeadRule()
        for name in (
            "GPT2LMHeadModel", "LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM", "Qwen2ForCausalLM",
            "Qwen3ForCausalLM", "GemmaForCausalLM", "Phi3ForCausalLM", "Starcoder2ForCausalLM",
            "GPTBigCodeForCausalLM", "GPTNeoXForCausalLM", "CodeGenForCausalLM", "GPTJForCausalLM",
            "GPTNeoForCausalLM", "PhiForCausalLM", "Qwen2MoeForCausalLM", "Qwen3MoeForCausalLM", "OlmoForCausalLM",
            "Olmo2ForCausalLM", "StableLmForCausalLM", "BloomForCausalLM",
        )
    },
    "FalconForCausalLM": HeadRule(("lm_logits = self.lm_head(hidden_states)",)),
    "OPTForCausalLM": HeadRule(("logits = self.lm_head(hidden_states).contiguous()",)),
    "Gemma2ForCausalLM": HeadRule(_GEMMA_SOFTCAP, softcap=lambda m: m.config.final_logit_softcapping),
    "Gemma3ForCausalLM": HeadRule(_GEMMA_SOFTCAP, softcap=lambda m: m.config.final_logit_softcapping),
    "CohereForCausalLM": HeadRule(_PLAIN + ("logits = logits * self.logit_scale",), scale=lambda m: m.logit_scale),
    "GraniteForCausalLM": HeadRule(
        _PLAIN + ("logits = logits / self.config.logits_scaling",), scale=lambda m: 1.0 / m.config.logits_scaling
    ),
    "RobertaForCausalLM": HeadRule(head_module_post=("lm_head", r"self\.decoder\(", ("x = self.decoder(x)",))),
    "T5ForConditionalGeneration": HeadRule(("lm_logits = self.lm_head(sequence_output)",), seq2seq=True),
    "MT5ForConditionalGeneration": HeadRule(("lm_logits = self.lm_head(sequence_output)",), seq2seq=True),
    "BartForConditionalGeneration": HeadRule(_BART, extra_bias="final_logits_bias", seq2seq=True),
    "PLBartForConditionalGeneration": HeadRule(
        ("lm_logits = self.lm_head(outputs.last_hidden_state)", _BART[1]), extra_bias="final_logits_bias", seq2seq=True
    ),
    "MBartForConditionalGeneration": HeadRule(
        ("lm_logits = self.lm_head(outputs[0]) + self.final_logits_bias",), extra_bias="final_logits_bias", seq2seq=True
    ),
}
# EncoderDecoderModel returns its decoder's logits unchanged; the decoder's own rule applies.
_ENCODER_DECODER_CHECK = ("logits=decoder_outputs.logits,",)


def supported_models() -> list[str]:
    return sorted(RULES) + ["EncoderDecoderModel (with a supported decoder)"]


# Older transformers (4.x, and 5.17 measured) apply the head to ``hidden_states[:, slice_indices, :]`` (its ``logits_to_keep``,
# 0 by default: every position), later versions slice earlier; the head then sees the same tensor. A slice that
# drops positions is refused anyway by the shape check of :func:`fused_model_loss`.
_KEEP_SLICE = re.compile(r"\[:, slice_indices, :\]")


def _normalise(line: str) -> str:
    return _KEEP_SLICE.sub("", re.sub(r"\s+#.*$", "", line.strip()))


def _lines_after(fn: Callable, call_regex: str) -> tuple[str, ...] | None:
    """Source lines of ``fn`` from the line calling ``call_regex`` up to its loss/return (None if absent)."""
    src = inspect.getsource(fn)
    m = re.search(call_regex, src)
    if m is None:
        return None
    rest = src[src.rfind("\n", 0, m.start()) + 1 :]
    out = []
    for line in rest.splitlines():
        line = _normalise(line)
        if "loss = None" in line or line.startswith(("if labels is not None", "return ")):
            break
        if line and not line.startswith("#"):
            out.append(line)
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _verify_source(cls: type, rule: HeadRule, head_cls: type | None) -> None:
    """Checks that the installed ``cls.forward`` still does what ``rule`` says (once per class)."""
    problems = []
    try:
        if rule.checks:
            src = {_normalise(l) for l in inspect.getsource(cls.forward).splitlines()}
            problems += [f"no line {c!r}" for c in rule.checks if c not in src]
        else:
            got = _lines_after(cls.forward, r"self\.lm_head\(")
            if got != rule.post:
                problems.append(f"after the head it runs {got!r}, expected {rule.post!r}")
        if rule.head_module_post is not None:
            _, regex, expected = rule.head_module_post
            got = _lines_after(head_cls.forward, regex)
            if got != expected:
                problems.append(f"{head_cls.__name__}.forward runs {got!r} after the projection, expected {expected!r}")
    except (OSError, TypeError):  # no source available (frozen install): trust the rule
        return
    if problems:
        raise NotImplementedError(
            f"fused loss: {cls.__name__}.forward in this transformers version computes its logits differently "
            f"from what dece knows ({'; '.join(problems)}); use the unfused loss on model(...).logits"
        )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The Hugging Face model inside DDP/DataParallel, ``torch.compile`` and PEFT wrappers."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # pragma: no cover
        FullyShardedDataParallel = ()  # type: ignore[assignment]
    m = model
    for _ in range(16):
        if isinstance(m, FullyShardedDataParallel):
            raise NotImplementedError("fused loss: FSDP-sharded models are not supported (the head weight is sharded)")
        if isinstance(m, (DistributedDataParallel, DataParallel)):
            m = m.module
        elif hasattr(m, "_orig_mod"):
            m = m._orig_mod
        elif type(m).__name__.startswith("Peft") and hasattr(m, "get_base_model"):
            m = m.get_base_model()
        else:
            return m
    return m


def head_rule(model: nn.Module) -> tuple[HeadRule, nn.Module]:
    """The rule for ``model`` (an unwrapped HF model) and the module whose forward is the head."""
    name = type(model).__name__
    if name == "EncoderDecoderModel":
        inner, head_owner = head_rule(model.decoder)
        if inner.seq2seq:
            raise NotImplementedError(f"fused loss: EncoderDecoderModel with decoder {type(model.decoder).__name__}")
        _verify_source(type(model), HeadRule(checks=_ENCODER_DECODER_CHECK), None)
        rule = HeadRule(inner.post, inner.scale, inner.softcap, inner.extra_bias, True, inner.head_module_post)
        return rule, head_owner
    rule = RULES.get(name)
    if rule is None:
        raise NotImplementedError(
            f"fused loss: {name} is not supported (its logits may be more than hidden @ head.weight.T); "
            f"supported: {', '.join(supported_models())}"
        )
    head_cls = type(getattr(model, rule.head_module_post[0])) if rule.head_module_post else None
    _verify_source(type(model), rule, head_cls)
    return rule, model


def _output_head(model: nn.Module) -> nn.Linear:
    head = model.get_output_embeddings()
    if not isinstance(head, nn.Linear) or hasattr(head, "base_layer"):
        raise NotImplementedError(
            f"fused loss: the output head must be a plain nn.Linear, got {type(head).__name__} "
            "(an adapter on the output head, e.g. LoRA on lm_head, is not supported: freeze it or target the body)"
        )
    if type(head.weight.data) is not torch.Tensor:
        raise NotImplementedError(f"fused loss: the head weight is a {type(head.weight.data).__name__}, not a dense tensor")
    return head


@contextmanager
def _capture_head_input(head: nn.Linear, bias_owner: nn.Module | None, bias_name: str | None):
    """Swaps ``head.forward`` for a recorder that returns a (..., 1) stand-in for the logits. The
    stand-in is 0 but depends on the head's input, weight and bias, so that DDP (which looks for the
    parameters an output depends on) sees the parameters as used. A (1, V) bias buffer added after
    the head is swapped for a (1, 1) zero meanwhile, so that the stand-in never grows to V columns."""
    store: dict[str, torch.Tensor] = {}

    def record(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if "hidden" in store:
            raise NotImplementedError("fused loss: the model calls its output head more than once")
        store["hidden"] = x
        stand_in = x[..., :1] * 0 + head.weight[:1, :1].sum() * 0
        return stand_in if head.bias is None else stand_in + head.bias[:1].sum() * 0

    saved_forward = head.__dict__.get("forward")
    head.forward = record
    saved_bias = None
    if bias_name is not None:
        saved_bias = getattr(bias_owner, bias_name)
        setattr(bias_owner, bias_name, saved_bias.new_zeros(1, 1))
    try:
        yield store
    finally:
        if saved_forward is None:
            del head.forward
        else:
            head.forward = saved_forward
        if bias_name is not None:
            setattr(bias_owner, bias_name, saved_bias)


def fused_model_loss(
    model: nn.Module,
    inputs: Mapping[str, Any],
    labels: torch.Tensor,
    loss: TokenLoss,
    epoch: float | None = None,
    mean_denominator: float | None = None,
) -> torch.Tensor:
    """``loss`` on ``model``'s logits for ``labels`` without materialising the logits (module docstring).

    ``inputs``: the model's keyword inputs (``input_ids``, ``attention_mask``, ...; a ``labels`` entry is
    ignored). Decoder-only: ``labels`` are aligned with ``input_ids`` and shifted here as HF does (the
    last position becomes ``ignore_index``). Encoder-decoder: ``labels`` are the decoder targets, and
    ``decoder_input_ids`` are derived from them as the model does, unless given. ``epoch`` and
    ``mean_denominator`` are passed to the loss as in :meth:`TokenLoss.forward`.
    """
    hf = unwrap_model(model)
    rule, head_owner = head_rule(hf)
    head = _output_head(hf)
    kwargs = {k: v for k, v in inputs.items() if k != "labels"}
    if rule.seq2seq:
        if "decoder_input_ids" not in kwargs and "decoder_inputs_embeds" not in kwargs:
            kwargs["decoder_input_ids"] = hf.prepare_decoder_input_ids_from_labels(labels=labels)
            if type(hf).__name__ == "EncoderDecoderModel" and "decoder_attention_mask" not in kwargs:
                pad = hf.config.pad_token_id
                kwargs["decoder_attention_mask"] = (kwargs["decoder_input_ids"] != pad).to(kwargs["decoder_input_ids"].dtype)
        target = labels
    else:
        target = F.pad(labels[..., 1:], (0, 1), value=loss.ignore_index)
    kwargs.setdefault("use_cache", False)
    with _capture_head_input(head, head_owner, rule.extra_bias) as store:
        out = model(**kwargs)
    del out
    if "hidden" not in store:
        raise NotImplementedError(f"fused loss: {type(hf).__name__} did not call its output head")
    hidden = store["hidden"]
    if hidden.shape[:-1] != target.shape:
        raise ValueError(f"fused loss: the head saw hidden states {tuple(hidden.shape)} for labels {tuple(labels.shape)}")
    if rule.scale is not None:
        scale = float(rule.scale(head_owner))
        if scale != 1.0:
            hidden = hidden * scale
    bias = head.bias
    if rule.extra_bias is not None:
        extra = getattr(head_owner, rule.extra_bias).reshape(-1).to(hidden.dtype)
        bias = extra if bias is None else bias + extra
    softcap = rule.softcap(head_owner) if rule.softcap is not None else None
    return FusedLinearLoss(loss)(hidden, head.weight, target, bias, epoch, mean_denominator, softcap=softcap)
