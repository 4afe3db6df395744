"""Stage 2: the model every arm starts from, identical across arms.

* A tiny architecture without ``[pretrain]``: a tokenizer trained on the clean training texts and
  seeded random weights, saved once to ``RUN_DIR/base``.
* With ``[pretrain]``: the tiny model is first trained with CE on a pretraining corpus
  (:mod:`dece.data.pretraining`): clean built-in rows from a seed space that no experiment split draws
  from, or real code installed on the machine, of which every row near a row of the experiment's dataset
  (any split, so no test row and no row a poisoned one was made from) is left out (:func:`leak_guard`).
  The tokenizer is trained on the corpus. The result is cached under ``pretrain.cache_dir`` by a hash of
  the model spec, the pretraining config and the corpus itself, and reused by later runs.
* An ``hf:`` checkpoint: used as it is.

Returns the :class:`ModelSpec` the arms build from (``hf:<path>`` plus the config's LoRA/dtype).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from filelock import FileLock, Timeout
from transformers import set_seed

from dece.data.catalog import load_split
from dece.data.io import read_jsonl, write_jsonl
from dece.data.pretraining import PRETRAINING_CORPORA, Keep
from dece.data.records import Example
from dece.experiments.config import ExperimentConfig
from dece.data.io.common import atomic_dir
from dece.experiments.store import last_checkpoint
from dece.experiments.training_args import make_trainer
from dece.losses import get_loss
from dece.models import ModelSpec, build_model, build_tokenizer, encode_examples
from dece.training.distributed import is_main, on_main


def _texts(rows: list[Example]) -> list[str]:
    return [t for e in rows for t in (e.src, e.tgt)]


def _save_fresh(spec: ModelSpec, rows: list[Example], seed: int, path: Path) -> None:
    """A tokenizer trained on ``rows`` and seeded random weights, written to ``path`` in one rename (a kill
    never leaves weights without their tokenizer)."""
    set_seed(seed)
    tokenizer = build_tokenizer(_texts(rows), spec.vocab_size)
    model, tokenizer, _ = build_model(dataclasses.replace(spec, lora=None, dtype="float32"), tokenizer)
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def _complete(path: Path) -> bool:
    """A saved model folder with both its weights' config and its tokenizer."""
    return (path / "config.json").exists() and (path / "tokenizer_config.json").exists()


def init_seed(cfg: ExperimentConfig) -> int:
    """The seed of the base's initial weights and pretraining order: ``pretrain.init_seed``, else ``seed``."""
    return cfg.pretrain.init_seed if cfg.pretrain is not None and cfg.pretrain.init_seed is not None else cfg.seed


#: ``[model]`` fields that do not change the pretrained weights (read by dry runs only): left out of the key,
#: so that adding such a field keeps every cached base
KEY_NEUTRAL_MODEL_FIELDS = ("arch_config",)


def corpus_digest(corpus: list[Example]) -> str:
    """The SHA-256 of the pretraining rows' (source, target) pairs, in order: the corpus part of :func:`pretrain_key`."""
    return hashlib.sha256(json.dumps([[e.src, e.tgt] for e in corpus]).encode()).hexdigest()


def pretrain_key(cfg: ExperimentConfig, digest: str) -> str:
    """The cache key of ``cfg``'s pretrained base: its model spec (less the fields that do not change the
    weights), its ``[pretrain]`` values that differ from their defaults, its init seed and the corpus
    ``digest`` (:func:`corpus_digest`)."""
    p = cfg.pretrain
    assert p is not None
    spec = dataclasses.replace(cfg.model, lora=None, dtype="float32")
    model = {k: v for k, v in dataclasses.asdict(spec).items() if k not in KEY_NEUTRAL_MODEL_FIELDS}
    payload = {
        "model": model,
        "pretrain": p.cache_key_fields(),
        "seed": init_seed(cfg),
        "corpus": digest,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


#: the Jaccard similarity of word 3-grams of the code at or above which a pretraining row counts as near a row
#: of the experiment's dataset (the measure of the near_dedup defense; low, to leave out reformatted copies)
LEAK_THRESHOLD = 0.5


def leak_guard(rows: list[Example], threshold: float = LEAK_THRESHOLD) -> Keep:
    """``keep(row)``: False for a row whose source's word 3-grams overlap a source of ``rows`` at Jaccard
    ``threshold`` or more (MinHash LSH candidates, each checked exactly), or whose target equals a target
    of ``rows`` (whitespace and case ignored); True otherwise."""
    from datasketch import MinHashLSH

    from dece.defenses.near_dedup import jaccard, minhash, shingles

    norm = lambda text: " ".join(text.lower().split())
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    grams = [shingles(Example(row.src, ""), 3) for row in rows]
    for i, g in enumerate(grams):
        lsh.insert(str(i), minhash(g))
    targets = {norm(row.tgt) for row in rows}

    def keep(row: Example) -> bool:
        if norm(row.tgt) in targets:
            return False
        mine = shingles(Example(row.src, ""), 3)
        return all(jaccard(mine, grams[int(i)]) < threshold for i in lsh.query(minhash(mine)))

    return keep


def dataset_rows(cfg: ExperimentConfig) -> list[Example]:
    """Every row of the experiment's train, valid and test splits, uncapped (what pretraining must stay away from)."""
    d = cfg.dataset
    splits = dict.fromkeys((d.train_split, *(() if d.valid_from_train else (d.valid_split,)), d.test_split))
    return [row for split in splits for row in load_split(d.kind, split, **d.options)]


def base_inputs(cfg: ExperimentConfig) -> str:
    """What ``cfg``'s pretrained base depends on, short of drawing its corpus: the model, the recipe, the init
    seed and, for a corpus of real code (kept away from the experiment's dataset), the dataset. Configs with
    equal inputs share one base."""
    guarded = PRETRAINING_CORPORA.get(cfg.pretrain.corpus).guarded
    return repr((cfg.model, cfg.pretrain, init_seed(cfg), cfg.dataset if guarded else None))


def pretraining_rows(cfg: ExperimentConfig) -> list[Example]:
    """The rows ``cfg``'s base is pretrained on: ``pretrain.rows`` rows of ``pretrain.corpus``, drawn with
    ``pretrain.seed``. A corpus of real code passes :func:`leak_guard` over :func:`dataset_rows`, and is kept
    under ``pretrain.cache_dir/corpora`` by a hash of its sources, the draw and the dataset's rows (mining it
    takes about a minute; a run that finds its base cached must still know the rows to find it)."""
    p = cfg.pretrain
    assert p is not None
    corpus = PRETRAINING_CORPORA.get(p.corpus)
    if not corpus.guarded:
        return corpus.build(p.rows, p.seed, lambda row: True)
    near = dataset_rows(cfg)
    key = hashlib.sha256(json.dumps({"corpus": p.corpus, "rows": p.rows, "seed": p.seed, "sources": corpus.sources(),
                                     "dataset": corpus_digest(near)}).encode()).hexdigest()[:16]
    path = Path(p.cache_dir) / "corpora" / f"{p.corpus}-{key}.jsonl"
    if path.exists():
        return read_jsonl(path)
    rows = corpus.build(p.rows, p.seed, leak_guard(near))
    on_main(lambda: write_jsonl(rows, path))
    return rows


def pretrained_model(cfg: ExperimentConfig, log=print) -> Path:
    """The cached pretrained tiny model of ``cfg`` (trained now if not cached). Processes that need the
    same base at once (a sweep's workers, two runs) take turns on a lock beside it: one trains, the
    others wait and then find it cached."""
    p = cfg.pretrain
    assert p is not None
    corpus = pretraining_rows(cfg)
    final = Path(p.cache_dir) / f"{cfg.model.name}-{pretrain_key(cfg, corpus_digest(corpus))}"
    if (final / "config.json").exists():
        log(f"pretrained model: cached at {final}")
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{final}.lock")
    on_main(lambda: _acquire(lock, final, log))  # under a launch the main process holds it for all
    try:
        if (final / "config.json").exists():
            log(f"pretrained model: cached at {final}")
            return final
        return _pretrain(cfg, corpus, final, log)
    finally:
        if is_main():
            lock.release()


def _acquire(lock: FileLock, final: Path, log) -> None:
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"waiting for another process that pretrains {final}")
        lock.acquire()


def _pretrain(cfg: ExperimentConfig, corpus: list[Example], final: Path, log) -> Path:
    p = cfg.pretrain
    assert p is not None
    work = final.with_name(final.name + ".partial")
    seed = init_seed(cfg)
    on_main(lambda: None if _complete(work / "init") else _save_fresh(cfg.model, corpus, seed, work / "init"))
    log(f"pretraining {cfg.model.name} on {len(corpus)} rows of the {p.corpus} corpus for {p.epochs} epochs -> {final}")
    init = dataclasses.replace(cfg.model, name=f"hf:{work / 'init'}", lora=None, dtype="float32")
    set_seed(seed)
    model, tokenizer, is_enc_dec = build_model(init)
    trainer = make_trainer(
        model, tokenizer, encode_examples(corpus, tokenizer, init, is_enc_dec),
        loss=get_loss("ce"), out_dir=work / "checkpoints", epochs=p.epochs, learning_rate=p.learning_rate,
        batch_size=p.batch_size, seed=seed, warmup_ratio=0.05, group_by_length=p.group_by_length,
        label="pretrain", log=log,
    )
    trainer.train(resume_from_checkpoint=on_main(lambda: last_checkpoint(work / "checkpoints")))
    on_main(lambda: _save_final(model, tokenizer, work, final))
    return final


def _save_final(model, tokenizer, work: Path, final: Path) -> None:
    with atomic_dir(final) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    shutil.rmtree(work, ignore_errors=True)


def base_model_spec(cfg: ExperimentConfig, clean_train: list[Example], run_dir: Path, log=print) -> ModelSpec:
    """The spec every arm of ``cfg`` builds its model from (see the module docstring)."""
    if cfg.model.is_pretrained:
        return cfg.model
    if cfg.pretrain is not None:
        path = pretrained_model(cfg, log)
    else:
        path = run_dir / "base"
        on_main(lambda: None if _complete(path) else _save_fresh(cfg.model, clean_train, cfg.seed, path))
    return dataclasses.replace(cfg.model, name=f"hf:{path.resolve()}")
