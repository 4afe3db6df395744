"""ONION (Qi et al., EMNLP 2021): a trigger word is an outlier that makes a fluent sentence less
fluent, so words whose deletion lowers the language-model perplexity of the input by more than a
threshold are deleted before the input reaches the model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from dece.defenses.base import InputDefense, registered
from dece.defenses.ngram import NgramLM
from dece.defenses.words import delete_words, is_placeholder, word_spans

HF_PREFIX = "hf:"
SCORES = ("log_ratio", "difference")
DEFAULT_THRESHOLDS = {"log_ratio": 0.15, "difference": 0.0}


class HFPerplexity:
    """Perplexity under a Hugging Face causal LM (``gpt2``, a local path...), batched; the text is
    scored after the tokenizer's ``bos`` (or ``eos``) token so its first token is predicted too."""

    def __init__(self, name: str, batch_size: int = 32) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(name)
        self.model = AutoModelForCausalLM.from_pretrained(name)
        self.model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
        self.batch_size = batch_size
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        self.start = [] if start is None else [start]
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (start or 0)

    @torch.no_grad()
    def __call__(self, texts: Sequence[str]) -> list[float]:
        out: list[float] = []
        limit = getattr(self.model.config, "n_positions", None) or getattr(self.model.config, "max_position_embeddings", 1024)
        device = next(self.model.parameters()).device
        for s in range(0, len(texts), self.batch_size):
            ids = [(self.start + self.tokenizer(t, add_special_tokens=False)["input_ids"])[:limit] for t in texts[s : s + self.batch_size]]
            width = max(len(i) for i in ids)
            input_ids = torch.full((len(ids), width), self.pad, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for r, i in enumerate(ids):
                input_ids[r, : len(i)] = torch.tensor(i)
                mask[r, : len(i)] = 1
            logits = self.model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float()
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), input_ids[:, 1:].to(device), reduction="none")
            m = mask[:, 1:].to(device).float()
            mean = (nll * m).sum(1) / m.sum(1).clamp_min(1.0)
            out += [math.exp(v) for v in mean.tolist()]
        return out


@registered
@dataclass
class Onion(InputDefense):
    """For each whitespace-separated word ``w_i`` of a test input ``x``, a suspicion score says how much
    deleting it makes the input more fluent; every word scoring above ``threshold`` is deleted (all
    scores come from the original input), with the whitespace in front of it. The rest of the input is
    kept character for character.

    Parameters:
        score: ``"log_ratio"`` (default): ``log ppl(x) - log ppl(x without w_i)``, the relative drop in
            perplexity, so one threshold fits short and long inputs and LMs of any perplexity scale;
            ``"difference"``: ONION's original ``ppl(x) - ppl(x without w_i)``.
        threshold: the score above which a word is deleted; ``None`` (default) means 0.15 for
            ``log_ratio`` (on the built-in data with the n-gram LM this deletes about 95% of BadPre/RIPPLe
            trigger words and about one other word in ten inputs) and 0 for ``difference``
            (OpenBackdoor's default: every word whose deletion lowers the perplexity at all).
        lm: ``"ngram"`` (default): a word n-gram LM with interpolated Kneser-Ney smoothing trained
            on the clean training descriptions (offline, fast; a stand-in for a general LM trained on
            clean text); or ``"hf:<name or path>"``: any Hugging Face causal LM, e.g. ``"hf:gpt2"``
            as in the original paper (downloaded unless cached or a local path).
        order: n-gram order of the ``ngram`` LM. >= 1.
        discount: Kneser-Ney discount of the ``ngram`` LM. In (0, 1).
        keep_placeholders: never delete a word that carries a ``$placeholder$`` (a variable name
            the generated code needs).
        iterative: instead of deleting every word over the threshold at once (the original), delete
            the single highest-scoring one, rescore the shortened input and repeat until no word is
            over the threshold. Neighbours of a trigger often score high only because the trigger
            is there (deleting a word that follows an unknown word removes a badly predicted token);
            rescoring spares them, at the cost of one scoring pass per deleted word.
        batch_size: batch size of an ``hf:`` LM. >= 1.
    """

    name = "onion"
    summary = "delete words whose removal lowers the LM perplexity of the input by more than a threshold"

    score: str = "log_ratio"
    threshold: float | None = None
    lm: str = "ngram"
    order: int = 3
    discount: float = 0.75
    keep_placeholders: bool = True
    iterative: bool = False
    batch_size: int = 32
    _ppl: Any = field(default=None, init=False, repr=False, compare=False)

    def check(self) -> None:
        if self.score not in SCORES:
            raise self.fail("score", f"must be one of {', '.join(SCORES)}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise self.fail("threshold", "must be a finite number or unset")
        if self.lm != "ngram" and not (self.lm.startswith(HF_PREFIX) and self.lm[len(HF_PREFIX):].strip()):
            raise self.fail("lm", "must be 'ngram' or 'hf:<name or path>'")
        if self.order < 1:
            raise self.fail("order", "must be >= 1")
        if not 0 < self.discount < 1:
            raise self.fail("discount", "must lie in (0, 1)")
        if self.batch_size < 1:
            raise self.fail("batch_size", "must be >= 1")

    def fit(self, sources: Sequence[str]) -> "Onion":
        """Train the n-gram LM on ``sources`` (clean training descriptions), or load the ``hf:`` LM."""
        if self.lm == "ngram":
            lm = NgramLM(self.order, self.discount).fit(sources)
            self._ppl = lambda texts: [lm.perplexity(t) for t in texts]
        else:
            self._ppl = HFPerplexity(self.lm[len(HF_PREFIX):].strip(), self.batch_size)
        return self

    def scores(self, source: str) -> list[float]:
        """The suspicion score of every word of ``source`` (``[]`` for fewer than two words)."""
        if self._ppl is None:
            raise RuntimeError("ONION's language model is not fitted; call fit(clean training sources) first")
        spans = word_spans(source)
        if len(spans) < 2:
            return [0.0] * len(spans)
        ppl = self._ppl([source] + [delete_words(source, {i}, spans) for i in range(len(spans))])
        if self.score == "difference":
            return [ppl[0] - p for p in ppl[1:]]
        return [math.log(ppl[0] / p) for p in ppl[1:]]

    @property
    def cutoff(self) -> float:
        """The threshold in use (``threshold``, or the score's default)."""
        return DEFAULT_THRESHOLDS[self.score] if self.threshold is None else self.threshold

    def _suspects(self, source: str, spans: list[tuple[int, int]]) -> dict[int, float]:
        """Word index -> score, for the words over the threshold that may be deleted."""
        return {i: f for i, f in enumerate(self.scores(source)) if f > self.cutoff
                and not (self.keep_placeholders and is_placeholder(source[spans[i][0]:spans[i][1]]))}

    def transform(self, sources: Sequence[str]) -> list[str]:
        out = []
        for source in sources:
            spans = word_spans(source)
            suspects = self._suspects(source, spans)
            if not self.iterative:
                out.append(delete_words(source, set(suspects), spans))
                continue
            while suspects:
                worst = max(suspects, key=lambda i: (suspects[i], -i))
                source = delete_words(source, {worst}, spans)
                spans = word_spans(source)
                suspects = self._suspects(source, spans)
            out.append(source)
        return out
