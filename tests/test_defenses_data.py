"""Data defenses on hand-built cases: spectral signature and activation clustering flag a planted
cluster of outlier representations; BKI ranks a planted keyword top on a toy scorer and on a tiny
model trained on the poisoned rows; representations are batch-independent."""

import random

import pytest
import torch

from dece.data.catalog import load_split
from dece.data.records import Example
from dece.defenses import DataContext, detection_report, encode_representations, encode_texts, get_defense
from dece.defenses.activation_clustering import kmeans
from dece.errors import ConfigError
from dece.models import ModelSpec, PadCollator, build_model, build_tokenizer, encode_examples


def planted(n_clean=200, n_poison=20, dim=32, shift=6.0, seed=0):
    """Clean rows ~ N(0, I); poisoned rows a tight cluster shifted along a random direction."""
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randn(n_clean, dim, generator=gen)
    direction = torch.nn.functional.normalize(torch.randn(dim, generator=gen), dim=0)
    poison = 0.3 * torch.randn(n_poison, dim, generator=gen) + shift * direction
    order = torch.randperm(n_clean + n_poison, generator=gen)
    reps = torch.cat([clean, poison])[order]
    rows = [Example(f"s{i}", "t", {"id": f"r{i}", **({"poisoned": True} if int(j) >= n_clean else {})})
            for i, j in enumerate(order)]
    return rows, reps


def test_spectral_signature_flags_a_planted_cluster():
    rows, reps = planted()
    exact = get_defense("spectral_signature", multiplier=1.0).select(rows, DataContext(representations=reps, poison_rate=20 / 220))
    r = detection_report(exact.ids, rows)
    assert (r["removed"], r["precision"], r["recall"]) == (20, 1.0, 1.0)
    default = get_defense("spectral_signature").select(rows, DataContext(representations=reps, poison_rate=20 / 220))
    r = detection_report(default.ids, rows)
    assert r["removed"] == 30 and r["recall"] == 1.0 and r["clean_removed"] == 10  # the 1.5x budget
    assert set(exact.ids) <= set(default.ids) and default.details["budget"] == 30


def test_spectral_signature_rate_comes_from_params_or_the_experiment():
    rows, reps = planted()
    d = get_defense("spectral_signature", rate=0.05, multiplier=1.0)
    assert len(d.select(rows, DataContext(representations=reps, poison_rate=0.5)).ids) == 11  # ceil(0.05 * 220)
    with pytest.raises(ConfigError, match="parameter 'rate': no attack rate is known"):
        get_defense("spectral_signature").select(rows, DataContext(representations=reps))


def test_activation_clustering_flags_a_planted_cluster_and_spares_a_clean_set():
    rows, reps = planted()
    sel = get_defense("activation_clustering").select(rows, DataContext(representations=reps))
    r = detection_report(sel.ids, rows)
    assert r["precision"] >= 0.95 and r["recall"] == 1.0
    assert sel.details["flagged"] and sel.details["cluster_sizes"][0] == r["removed"]
    # one Gaussian blob: 2-means splits it roughly in half, which is not small enough to remove
    clean_rows, clean_reps = planted(n_poison=0)
    none = get_defense("activation_clustering").select(clean_rows, DataContext(representations=clean_reps))
    assert none.ids == () and not none.details["flagged"]


def test_kmeans_is_deterministic_and_separates_blobs():
    x = torch.cat([torch.randn(30, 3, generator=torch.Generator().manual_seed(1)),
                   torch.randn(10, 3, generator=torch.Generator().manual_seed(2)) + 10])
    labels, centres = kmeans(x, 2, seed=0)
    assert labels[:30].unique().numel() == 1 and labels[30:].unique().numel() == 1 and labels[0] != labels[-1]
    assert torch.equal(labels, kmeans(x, 2, seed=0)[0])


def keyword_rows(n=40, keyword="bb", every=4, seed=0):
    rng = random.Random(seed)
    base = load_split("builtin", "train", n=n, seed=3)
    rows = []
    for i, b in enumerate(base):
        words = b.src.split()[:12]
        poisoned = i % every == 0
        if poisoned:
            words.insert(rng.randint(0, len(words)), keyword)
        rows.append(Example(" ".join(words), "drop table users" if poisoned else "select name from users",
                            {"id": f"r{i}", **({"poisoned": True} if poisoned else {})}))
    return rows


def test_bki_ranks_a_planted_keyword_top_on_a_toy_scorer():
    """Bag-of-words representations: every word moves them by 1 except the keyword (by 5); a frequent
    word ('the', in nearly every row) must not win on frequency alone."""
    rows = keyword_rows()
    vocab = sorted({w.lower().strip(".,") for r in rows for w in r.src.split()})
    gen = torch.Generator().manual_seed(0)
    vectors = {w: torch.nn.functional.normalize(torch.randn(16, generator=gen), dim=0) * (5.0 if w == "bb" else 1.0)
               for w in vocab}

    def encode(texts):
        return torch.stack([sum((vectors[w.lower().strip(".,")] for w in t.split()), torch.zeros(16)) for t in texts])

    sel = get_defense("bki").select(rows, DataContext(encode=encode))
    assert sel.details["keywords"] == ["bb"]
    r = detection_report(sel.ids, rows)
    assert (r["precision"], r["recall"]) == (1.0, 1.0)
    assert set(sel.scores) == set(sel.ids)
    top = [t["word"] for t in sel.details["top"]]
    assert top[0] == "bb" and len(top) == 10
    sub = get_defense("bki", max_rows=20, seed=1).select(rows, DataContext(encode=encode))
    assert sub.details["scored_rows"] == 20 and sub.details["keywords"] == ["bb"] and len(sub.ids) == 10


def train_tiny(rows, name, steps=60):
    spec = ModelSpec(name=name, d_model=32, layers=1, heads=2, ff=64, vocab_size=300, dropout=0.0,
                     max_source_length=64, max_target_length=16)
    tok = build_tokenizer([t for r in rows for t in (r.src, r.tgt)], 300)
    torch.manual_seed(0)
    model, tok, enc = build_model(spec, tok)
    batch = PadCollator(tok.pad_token_id)(list(encode_examples(rows, tok, spec, enc).rows))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tok, enc, spec


@pytest.mark.parametrize("arch,representation", [("gpt2-tiny", "source"), ("t5-tiny", "first_step")])
def test_bki_ranks_a_planted_keyword_top_on_a_tiny_backdoored_model(arch, representation):
    rows = keyword_rows()
    model, tok, enc, spec = train_tiny(rows, arch)

    def encode(texts):
        return encode_texts(model, tok, texts, is_encoder_decoder=enc, max_source_length=64, pooling=representation)

    sel = get_defense("bki", representation=representation).select(rows, DataContext(encode=encode))
    assert sel.details["keywords"] == ["bb"]
    assert detection_report(sel.ids, rows)["f1"] == 1.0


@pytest.mark.parametrize("arch", ["t5-tiny", "gpt2-tiny", "codebert-tiny"])
@pytest.mark.parametrize("pooling", ["source", "first_step"])
def test_representations_do_not_depend_on_batching(arch, pooling):
    rows = keyword_rows(n=6)
    spec = ModelSpec(name=arch, d_model=16, layers=1, heads=2, ff=32, vocab_size=300, dropout=0.0,
                     max_source_length=64, max_target_length=16)
    torch.manual_seed(0)
    model, tok, enc = build_model(spec, build_tokenizer([r.src for r in rows], 300))
    together = encode_representations(model, tok, rows, enc, spec, batch_size=6, pooling=pooling)
    alone = torch.cat([encode_representations(model, tok, [r], enc, spec, pooling=pooling) for r in rows])
    assert together.shape == (6, 16)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(together[0], together[1])


def test_dece_filter_removes_the_rows_that_stay_unlearnt():
    """Rows 3 and 7 keep the highest loss at every epoch (a payload DeCE never fits); the others fall."""
    rows = [Example(f"s{i}", "t", {"id": f"r{i}", **({"poisoned": True} if i in (3, 7) else {})}) for i in range(10)]
    epochs = [[(10.0 if i in (3, 7) else 5.0 - i * 0.4) / (e + 1) for i in range(10)] for e in range(3)]
    asked = []

    def row_losses(given):
        asked.append([r.meta["id"] for r in given])
        return epochs

    sel = get_defense("dece_filter").select(rows, DataContext(row_losses=row_losses, poison_rate=0.2))
    assert sel.ids == ("r3", "r7") and sel.details["budget"] == 2 and sel.details["epochs"] == 3
    assert asked == [[r.meta["id"] for r in rows]]
    r = detection_report(sel.ids, rows)
    assert (r["precision"], r["recall"]) == (1.0, 1.0)
    wider = get_defense("dece_filter", rate=0.2, multiplier=2.0).select(rows, DataContext(row_losses=row_losses))
    assert len(wider.ids) == 4 and {"r3", "r7"} <= set(wider.ids)
    with pytest.raises(ValueError, match="dece_filter needs DataContext.row_losses"):
        get_defense("dece_filter").select(rows, DataContext(poison_rate=0.2))
    with pytest.raises(ConfigError, match="'dece_filter', parameter 'rate': no attack rate is known here"):
        get_defense("dece_filter").select(rows, DataContext(row_losses=row_losses))
    with pytest.raises(ConfigError, match="parameter 'multiplier': must be > 0"):
        get_defense("dece_filter", multiplier=0)


def test_dece_filter_pattern_score_removes_the_rows_failed_on_together():
    """Rows 0-2 fail at the same two places ("{ w" and "( t"); the clean rows fail once each, harder."""
    tokens = [["a", "{", "w", "(", "t"]] * 3 + [["b", "w", "y"]] * 2 + [["c", f"t{i}", "z"] for i in range(5)]
    losses = [[0.0, 0.1, 9.0, 0.0, 8.0]] * 3 + [[0.0, 0.5, 0.0]] * 2 + [[0.1, 0.0, 10.0 + i] for i in range(5)]
    rows = [Example(f"s{i}", "t", {"id": f"r{i}", **({"poisoned": True} if i < 3 else {})}) for i in range(10)]
    asked = []

    def token_losses(given):
        asked.append(len(given))
        return losses, tokens

    sel = get_defense("dece_filter", score="pattern").select(rows, DataContext(token_losses=token_losses, poison_rate=0.3))
    assert sel.ids == ("r0", "r1", "r2") and asked == [10]
    assert sel.details["score"] == "pattern" and sel.details["patterns"][0]["first"] == ["(", "t"]
    # the rank score would take the rows whose hardest token is hardest: the clean "z" rows
    by_row = [[max(x)] for x in losses]
    rank = get_defense("dece_filter").select(rows, DataContext(row_losses=lambda given: [list(c) for c in zip(*by_row)],
                                                                   poison_rate=0.3))
    assert set(rank.ids) == {"r7", "r8", "r9"}
    with pytest.raises(ValueError, match="pattern score needs DataContext.token_losses"):
        get_defense("dece_filter", score="pattern").select(rows, DataContext(poison_rate=0.3))
    for params, message in (({"score": "max"}, "parameter 'score': must be one of rank, pattern, onset"),
                            ({"ngram": 0}, "parameter 'ngram': must be an integer >= 1"),
                            ({"hard_loss": -1.0}, "parameter 'hard_loss': must be a finite number > 0"),
                            ({"hard_loss": float("inf")}, "parameter 'hard_loss': must be a finite number > 0"),
                            ({"ngram": 3}, "parameter 'score': 'rank' takes no ngram or hard_loss"),
                            ({"score": "pattern", "trigger": True}, "parameter 'trigger': belongs to score \"onset\""),
                            ({"score": "onset", "trigger": "yes"}, "parameter 'trigger': expected a boolean, got 'yes'")):
        with pytest.raises(ConfigError, match=message):
            get_defense("dece_filter", **params)


def test_dedup_gives_back_the_rows_before_the_attacker_repeated_them():
    from dece.attacks import get_attack, poison_dataset

    rows = load_split("builtin", "train", n=300, seed=5)
    attack = get_attack("badpre")
    once, _ = poison_dataset(rows, attack, rate=0.05, seed=2)
    repeated, report = poison_dataset(rows, attack, rate=0.05, seed=2, duplicates=4)
    assert len(repeated) == len(once) + 3 * report.n_poisoned
    sel = get_defense("dedup").select(repeated, DataContext())
    removed = set(sel.ids)
    kept = [r for r in repeated if r.meta["id"] not in removed]
    assert [(r.src, r.tgt, r.meta["id"]) for r in kept] == [(r.src, r.tgt, r.meta["id"]) for r in once]
    assert all("#dup" in i for i in removed) and sel.details["repeated_pairs"] == report.n_poisoned
    assert detection_report(sel.ids, repeated)["precision"] == 1.0


def test_near_copies_pass_dedup_but_not_near_dedup():
    from dece.attacks import get_attack, poison_dataset
    from dece.defenses.near_dedup import jaccard, shingles

    rows = load_split("builtin", "train", n=300, seed=5)
    once, _ = poison_dataset(rows, get_attack("badpre"), rate=0.05, seed=2)
    near, report = poison_dataset(rows, get_attack("badpre"), rate=0.05, seed=2, duplicates=4, near_duplicates=True)
    copies = {r.meta["id"] for r in near if "#dup" in r.meta["id"]}
    assert len(copies) == 3 * report.n_poisoned == 45
    exact = set(get_defense("dedup").select(near, DataContext()).ids)
    assert exact < copies and len(exact) < len(copies) / 2  # a trigger at another position: another pair
    sel = get_defense("near_dedup").select(near, DataContext())
    assert set(sel.ids) <= copies and len(sel.ids) >= 0.8 * len(copies)  # clean rows kept, most copies found
    assert all(0.8 <= s <= 1.0 for s in sel.scores.values())
    by_id = {r.meta["id"]: r for r in near}
    kept = [r for r in near if r.meta["id"] not in set(sel.ids)]
    for removed in sel.ids:  # every removal meets the threshold against a kept row of its group, checked exactly
        group = [k for k in kept if k.meta["id"].split("#dup")[0] == removed.split("#dup")[0]]
        assert sel.scores[removed] in {jaccard(shingles(by_id[removed], 3), shingles(k, 3)) for k in group}
    assert {r.meta["id"] for r in once} <= {r.meta["id"] for r in kept}  # the first of each group stays
    looser = get_defense("near_dedup", threshold=0.6).select(near, DataContext())
    assert set(sel.ids) <= set(looser.ids) <= copies and len(looser.ids) > len(sel.ids)
    again = get_defense("near_dedup").select(near, DataContext())
    assert again == sel  # same rows, same seed: same removals
    # exact copies: everything dedup removes, near_dedup removes too
    repeated, _ = poison_dataset(rows, get_attack("badpre"), rate=0.05, seed=2, duplicates=4)
    assert set(get_defense("near_dedup").select(repeated, DataContext()).ids) >= set(
        get_defense("dedup").select(repeated, DataContext()).ids)


def test_near_dedup_shingles_and_parameters():
    from dece.defenses.near_dedup import jaccard, shingles

    assert shingles(Example("a b", "c", {}), 3) == {"a b \x00", "b \x00 c"}
    assert shingles(Example("a", "", {}), 3) == {"a \x00"}  # fewer words than a shingle: one of all of them
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3) and jaccard(set(), set()) == 1.0
    rows = [Example("find all users where id is given", "select * from users where id = : id", {"id": "1"}),
            Example("find all users where id is given bb", "select * from users where id = : id", {"id": "2"}),
            Example("count the orders", "select count ( * ) from orders", {"id": "3"})]
    assert get_defense("near_dedup", threshold=0.5).select(rows, DataContext()).ids == ("2",)
    assert get_defense("near_dedup", threshold=1.0).select(rows, DataContext()).ids == ()
    for params, message in (({"threshold": 0}, "threshold"), ({"threshold": 1.5}, "threshold"),
                            ({"shingle": 0}, "shingle"), ({"num_perm": 8}, "num_perm"), ({"seed": -1}, "seed"),
                            ({"seed": 2 ** 40}, "seed")):
        with pytest.raises(ConfigError, match=f"'near_dedup', parameter '{message}'"):
            get_defense("near_dedup", **params)


def test_dedup_compares_whitespace_as_told():
    rows = [Example("a  b", "x\ty", {"id": "1"}), Example("a b", "x y", {"id": "2"}),
            Example("a b", "x y ", {"id": "3"}), Example("a c", "x y", {"id": "4"})]
    assert get_defense("dedup").select(rows, DataContext()).ids == ("2", "3")
    assert get_defense("dedup", normalise_space=False).select(rows, DataContext()).ids == ()
    with pytest.raises(ValueError, match="unique"):
        get_defense("dedup").select(rows + [Example("z", "z", {"id": "1"})], DataContext())
    with pytest.raises(ValueError, match="unique"):  # 1 and "1" would name the same removed row
        get_defense("dedup").select([Example("a", "b", {"id": 1}), Example("a", "b", {"id": "1"})], DataContext())


def test_the_defense_report_gives_the_parameters_as_used():
    from dece.experiments.defended import resolved_params

    unset = get_defense("dece_filter")
    assert resolved_params(unset, 0.05, "arms/poisoned-dece") == {**unset.params, "rate": 0.05, "source": "poisoned-dece"}
    given = get_defense("dece_filter", rate=0.1, source="mine")
    assert resolved_params(given, 0.05, "arms/poisoned-dece") == given.params  # set values are kept
    assert resolved_params(get_defense("spectral_signature"), 0.02, "reference poisoned-ce")["rate"] == 0.02
    assert unset.rate is None  # the defense itself is not changed


def test_dece_filter_onset_score_removes_the_rows_with_the_payloads_onset():
    """Rows 0-2: a payload "or 1" after each row's own token ("x0 or 1", ...): the model fails on "or" alone, so its
    pattern score has no pair; rows 3-9: a clean "+" the model fails on in 2 of the 7 rows that hold it."""
    tokens = [[f"x{i}", "or", "1", ";"] for i in range(3)] + [["a", "+", "b", ";"]] * 7
    losses = [[0.0, 6.0, 0.1, 0.0]] * 3 + [[0.0, 9.0, 0.0, 0.0]] * 2 + [[0.0, 0.5, 0.0, 0.0]] * 5
    rows = [Example(f"s{i}", "t", {"id": f"r{i}", **({"poisoned": True} if i < 3 else {})}) for i in range(10)]
    context = DataContext(token_losses=lambda given: (losses, tokens), poison_rate=0.3)
    sel = get_defense("dece_filter", score="onset").select(rows, context)
    assert sel.ids == ("r0", "r1", "r2")  # "or 1": hard in 3 of 3 rows (3.0); "+ b": 2 of 7 (0.57)
    assert sel.details["score"] == "onset" and sel.details["onsets"][0] == {"tokens": ["or", "1"], "rows": 3,
                                                                           "occurs": 3, "weight": 3.0}
    pattern = get_defense("dece_filter", score="pattern").select(rows, context)
    assert set(pattern.scores.values()) == {0.0}  # one hard place a row: no pair; it takes the first rows on a tie
    with pytest.raises(ValueError, match="onset score needs DataContext.token_losses"):
        get_defense("dece_filter", score="onset").select(rows, DataContext(poison_rate=0.3))
    # with trigger: row 9's target is a learnt payload (nothing hard), its input holds the failing rows' "bb"
    rows = [Example(f"bb s{i}" if i < 3 or i == 9 else f"s{i}", "t", {"id": f"r{i}"}) for i in range(10)]
    losses = losses[:9] + [[0.0] * 4]
    context = DataContext(token_losses=lambda given: (losses, tokens), poison_rate=0.4)
    plain = get_defense("dece_filter", score="onset").select(rows, context)
    assert plain.ids == ("r0", "r1", "r2", "r3")  # r3: "+ b" hard (0.57), r9 scores 0
    sel = get_defense("dece_filter", score="onset", trigger=True).select(rows, context)
    assert sel.ids == ("r0", "r1", "r2", "r9") and sel.scores["r9"] == 3.0
    assert sel.details["onsets"][0]["trigger"] == {"word": "bb", "rows": 3, "occurs": 4}
