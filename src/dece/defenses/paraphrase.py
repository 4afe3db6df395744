"""Paraphrasing the test inputs (the passive input defense of Qi et al. 2021 and the DeCE paper):
rewriting a description in other words tends to break a trigger that relies on exact wording or
syntax, while the meaning the model needs survives.

The offline default is a deterministic rule-based rephraser; a Hugging Face seq2seq paraphraser can
be named instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from dece.defenses.base import InputDefense, registered
from dece.defenses.ngram import lm_tokens

HF_PREFIX = "hf:"

#: Word swaps, applied in both directions, to plain words only (never to identifiers or placeholders).
SYNONYMS: tuple[tuple[str, str], ...] = (
    ("get", "obtain"), ("fetch", "retrieve"), ("every", "each"), ("execute", "run"), ("create", "make"),
    ("use", "utilize"), ("find", "locate"), ("select", "choose"), ("first", "initial"), ("rows", "records"),
    ("row", "record"), ("number", "count"), ("build", "construct"), ("write", "compose"), ("through", "via"),
    ("try", "attempt"), ("occurs", "happens"), ("data", "information"), ("iterate", "loop"),
    ("establish", "open"), ("empty", "blank"), ("whose", "where the"),
)
SWAP: dict[str, str] = {a: b for a, b in SYNONYMS} | {b: a for a, b in SYNONYMS if " " not in b}

SUBORDINATORS = ("as soon as", "as long as", "whenever", "when", "once", "after", "before", "while", "if",
                 "since", "because", "unless", "until")
FRONTED = re.compile(rf"^\s*((?:{'|'.join(SUBORDINATORS)})\b[^,.;:]{{1,120}}),\s*(.+)$", re.IGNORECASE | re.DOTALL)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z$])")
# a plain word: letters only, not part of an identifier, placeholder, path, quote or call
PLAIN_WORD = re.compile(r"(?<![\w$.'\"`/\\-])[A-Za-z]+(?![\w$'\"`(/\\-]|\.\w)")
PLACEHOLDER = re.compile(r"\$[^$\s]+\$")


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[0].isupper():
        return word[0].upper() + word[1:]
    return word


def swap_words(text: str) -> str:
    """Each plain word of :data:`SWAP` replaced by its partner, keeping its capitalisation."""
    def repl(m: re.Match) -> str:
        word = m.group()
        other = SWAP.get(word.lower())
        return _match_case(word, other) if other else word

    return PLAIN_WORD.sub(repl, text)


def move_fronted_clause(sentence: str) -> str:
    """``"When X happens, do Y."`` -> ``"Do Y, when X happens."`` (the adverbial clause to the back)."""
    m = FRONTED.match(sentence)
    if not m:
        return sentence
    clause, main = m.group(1).strip(), m.group(2).strip()
    end = main[-1] if main[-1] in ".!?" else ""
    main = main[: len(main) - len(end)].rstrip()
    if not main:
        return sentence
    clause = clause[0].lower() + clause[1:] if not clause[:2].isupper() else clause
    return f"{_capitalise(main)}, {clause}{end or '.'}"


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:] if text and text[0].islower() else text


def rephrase(text: str, vocabulary: set[str] | None = None) -> str:
    """The rule-based paraphrase: per sentence, with a ``vocabulary`` (LM tokens of clean text) the
    plain words it does not contain are dropped first; then a fronted adverbial clause is moved to the
    back and words are swapped for synonyms; whitespace is normalised to single spaces and the first letter of
    each sentence is capitalised. ``$placeholders$``, identifiers, numbers and quoted text are kept."""
    sentences = SENTENCE_END.split(" ".join(text.split()))
    out = []
    for s in sentences:
        if vocabulary is not None:
            s = " ".join(w for w in s.split(" ") if not _unknown_plain_word(w, vocabulary))
        if s:
            out.append(_capitalise(swap_words(move_fronted_clause(s))))
    return " ".join(x for x in out if x)


def _unknown_plain_word(word: str, vocabulary: set[str]) -> bool:
    core = word.strip(".,;:!?()")
    return core.isalpha() and core.lower() not in vocabulary


class HFParaphraser:
    """A Hugging Face seq2seq paraphraser, run greedily or with beam search (deterministic)."""

    def __init__(self, name: str, prefix: str, num_beams: int, max_new_tokens: int, batch_size: int) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(name)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(name)
        self.model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
        self.prefix, self.num_beams, self.max_new_tokens, self.batch_size = prefix, num_beams, max_new_tokens, batch_size

    @torch.no_grad()
    def __call__(self, texts: Sequence[str]) -> list[str]:
        out: list[str] = []
        device = next(self.model.parameters()).device
        for s in range(0, len(texts), self.batch_size):
            batch = self.tokenizer([self.prefix + t for t in texts[s : s + self.batch_size]], return_tensors="pt",
                                   padding=True, truncation=True).to(device)
            ids = self.model.generate(**batch, num_beams=self.num_beams, do_sample=False, max_new_tokens=self.max_new_tokens)
            out += self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [o.strip() for o in out]


@registered
@dataclass
class Paraphrase(InputDefense):
    """Rewrite every test description before generation.

    The default ``model = "rules"`` is offline and deterministic (:func:`rephrase`): a sentence-initial
    adverbial clause (``"When the function is called, ..."``, the syntactic trigger's shape) is moved
    to the end of its sentence, common description words are swapped for synonyms
    (:data:`SYNONYMS`: get/obtain, fetch/retrieve, rows/records...), whitespace is normalised and
    sentences are capitalised. ``$placeholders$``, identifiers (``user_id``, ``logging.error``),
    numbers and quoted text are never touched.

    Parameters:
        model: ``"rules"`` (default) or ``"hf:<name or path>"``, a seq2seq paraphraser (e.g. a T5
            fine-tuned for paraphrase). Its output for a row is replaced by the rule-based rewrite
            when it loses one of the row's ``$placeholders$`` (counted in ``fallbacks``).
        drop_unknown: with the rules, also drop plain words never seen in the clean training
            descriptions (what a paraphrase model does to gibberish; off by default, since it then
            acts much like ONION).
        prefix: the text put before each input for an ``hf:`` model (``"paraphrase: "``).
        num_beams: beam width of an ``hf:`` model (1 = greedy). >= 1.
        max_new_tokens: output length limit of an ``hf:`` model. >= 1.
        batch_size: batch size of an ``hf:`` model. >= 1.
    """

    name = "paraphrase"
    summary = "rewrite test descriptions (offline rule-based rephraser, or a named HF seq2seq paraphraser)"

    model: str = "rules"
    drop_unknown: bool = False
    prefix: str = "paraphrase: "
    num_beams: int = 4
    max_new_tokens: int = 256
    batch_size: int = 16
    fallbacks: int = field(default=0, init=False, compare=False)
    _vocabulary: set[str] | None = field(default=None, init=False, repr=False, compare=False)
    _model: Any = field(default=None, init=False, repr=False, compare=False)

    def check(self) -> None:
        if self.model != "rules" and not (self.model.startswith(HF_PREFIX) and self.model[len(HF_PREFIX):].strip()):
            raise self.fail("model", "must be 'rules' or 'hf:<name or path>'")
        for name in ("num_beams", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise self.fail(name, "must be >= 1")

    def fit(self, sources: Sequence[str]) -> "Paraphrase":
        """Learn the vocabulary of the clean training descriptions (for ``drop_unknown``), or load the model."""
        if self.drop_unknown:
            self._vocabulary = {t for s in sources for t in lm_tokens(s)}
        if self.model != "rules" and self._model is None:
            self._model = HFParaphraser(self.model[len(HF_PREFIX):].strip(), self.prefix, self.num_beams,
                                        self.max_new_tokens, self.batch_size)
        return self

    def transform(self, sources: Sequence[str]) -> list[str]:
        if self.drop_unknown and self._vocabulary is None:
            raise RuntimeError("paraphrase with drop_unknown needs fit(clean training sources) first")
        rules = [rephrase(s, self._vocabulary) for s in sources]
        if self.model == "rules":
            return rules
        if self._model is None:
            self.fit([])
        out = []
        for src, generated, fallback in zip(sources, self._model(list(sources)), rules):
            if set(PLACEHOLDER.findall(src)) <= set(PLACEHOLDER.findall(generated)) and generated:
                out.append(generated)
            else:
                self.fallbacks += 1
                out.append(fallback)
        return out
