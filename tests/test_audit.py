"""dece audit: the suspicion scores on synthetic loss trajectories, precision/recall@k and AP by hand,
the CSV of flagged rows and the CLI, on synthetic run folders (no training)."""

import json

import pytest

from dece.defenses.row_scores import (
    average_precision,
    pattern_scores,
    percentile_ranks,
    precision_recall_at_k,
    ranking,
    suspicion_scores,
)
from dece.reporting.audit import audit_arm
from dece.cli import main
from dece.errors import ConfigError
from run_fixtures import read_csv_rows, write_audit_run

# 6 rows x 5 epochs (given per row, stored per epoch). Rows 0-2 clean, learned at once; row 3 clean but
# intrinsically hard; row 4 poisoned under CE: stays high, then collapses in epoch 5; row 5 poisoned
# under DeCE: never learned.
BY_ROW = [
    [3.0, 1.0, 0.5, 0.3, 0.2],
    [2.5, 0.9, 0.4, 0.2, 0.1],
    [2.8, 1.1, 0.6, 0.4, 0.3],
    [4.0, 3.0, 1.2, 0.9, 0.25],
    [5.0, 5.0, 4.5, 4.0, 0.04],
    [6.0, 6.0, 6.0, 6.0, 6.0],
]
LOSSES = [list(epoch) for epoch in zip(*BY_ROW)]
POISONED = [False, False, False, False, True, True]


def test_percentile_ranks_with_ties():
    assert percentile_ranks([3.0, 1.0, 2.0]) == [1.0, 0.0, 0.5]
    assert percentile_ranks([1.0, 1.0, 2.0, 0.0]) == [0.5, 0.5, 1.0, 0.0]
    assert percentile_ranks([7.0]) == [1.0]


def test_each_score_finds_its_kind_of_row():
    rank = suspicion_scores(LOSSES, "rank")  # never learned first
    assert ranking(rank)[:2] == [5, 4]
    drop = suspicion_scores(LOSSES, "drop")  # learned late first
    assert ranking(drop)[0] == 4 and drop[4] == 0.8 - 0.0 and drop[5] == 0.0
    collapse = suspicion_scores(LOSSES, "collapse")  # high, then collapsed
    assert ranking(collapse)[0] == 4 and collapse[4] == pytest.approx(0.8 * 0.8)
    with pytest.raises(ConfigError, match="valid names"):
        suspicion_scores(LOSSES, "nope")
    with pytest.raises(ConfigError, match="row_losses = true"):
        suspicion_scores([], "rank")
    with pytest.raises(ConfigError, match="at least two epochs"):
        suspicion_scores(LOSSES[:1], "collapse")


def test_precision_recall_and_average_precision_by_hand():
    order, pos = [4, 0, 5, 1], {4, 5}
    assert precision_recall_at_k(order, pos, 1) == (1.0, 0.5)
    assert precision_recall_at_k(order, pos, 2) == (0.5, 0.5)
    assert precision_recall_at_k(order, pos, 3) == (2 / 3, 1.0)
    assert average_precision(order, pos) == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_audit_arm_metrics_and_csv(tmp_path):
    run = write_audit_run(tmp_path / "run", LOSSES, POISONED)
    result = audit_arm(run, "poisoned-ce", score="rank")
    assert result.statistic == "max" and result.epochs == [1, 2, 3, 4, 5] and result.positives == {4, 5}
    m = result.metrics()
    assert m["n_poisoned"] == 2 and m["ap"] == 1.0
    assert [(a["k"], a["precision"], a["recall"]) for a in m["at_k"]] == [(1, 1.0, 0.5), (2, 1.0, 1.0), (4, 0.5, 1.0)]
    n = len(LOSSES[0])  # a k above the row count flags every row: precision of the whole arm, not of k
    assert result.metrics([n + 1000])["at_k"] == [{"k": n, "precision": 2 / n, "recall": 1.0}]
    rows = read_csv_rows(result.write_csv(tmp_path / "flagged.csv"))
    assert [(r["rank"], r["row_index"], r["id"], r["poisoned"]) for r in rows] == [("1", "5", "train-5", "1"), ("2", "4", "train-4", "1")]
    assert rows[0]["src"] == "src 5" and rows[0]["tgt"] == "tgt 5"
    drop = audit_arm(run, "poisoned-ce")  # the default for a CE arm: drop on the mean token CE
    assert (drop.score, drop.statistic, drop.order[0]) == ("drop", "mean", 4)
    # only the first four epochs: row 4 has not been learned yet, so it has not dropped
    early = audit_arm(run, "poisoned-ce", epochs=4)
    assert early.epochs == [1, 2, 3, 4] and early.scores[4] == 0.0
    with pytest.raises(ConfigError, match="no arm 'other'"):
        audit_arm(run, "other")


def test_cli_audit_writes_csv_and_summary(tmp_path, capsys):
    run = write_audit_run(tmp_path / "run", LOSSES, POISONED)
    assert main(["audit", str(run), "--k", "3", "--score", "rank"]) == 0
    out = capsys.readouterr().out
    assert "| poisoned-ce | rank | max | 5 | 6 | 2 | 1.000 | 66.7 | 100.0 |" in out
    summary = json.loads((run / "audit" / "summary.json").read_text())
    assert summary[0]["at_k"] == [{"k": 3, "precision": 2 / 3, "recall": 1.0}]
    assert len(read_csv_rows(run / "audit" / "poisoned-ce.csv")) == 3
    assert "poisoned-row audit" not in (run / "audit" / "summary.md").read_text()  # the report adds its own title


def test_cli_audit_without_row_losses_is_a_clear_error(tmp_path, capsys):
    run = write_audit_run(tmp_path / "run", LOSSES, POISONED, key="row_losses")
    assert main(["audit", str(run), "--arm", "poisoned-ce", "--score", "rank"]) == 2  # rank reads max
    assert "row_losses = true" in capsys.readouterr().err
    assert main(["audit", str(run), "--arm", "poisoned-ce", "--score", "rank", "--stat", "mean"]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["audit", str(tmp_path / "empty")]) == 2
    assert "is not a run folder of `dece run` (no config.toml)" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--k", "-3"], "--k: must be a positive integer, got -3"),
    (["--k", "0"], "--k: must be a positive integer, got 0"),
    (["--epochs", "0"], "--epochs: must be a positive integer, got 0"),
    (["--out", "{run}/arms"], "lies in the run's arms folder"),
    (["--out", "{run}/arms/poisoned-ce/audit"], "lies in the run's arms folder"),
    (["--score", "pattern", "--ngram", "0"], "--ngram must be >= 1, got 0"),
    (["--score", "pattern", "--hard-loss", "0"], "--hard-loss must be a finite number > 0"),
    (["--score", "pattern", "--hard-loss", "inf"], "--hard-loss must be a finite number > 0"),
    (["--score", "pattern"], "no arm trained with a DeCE loss kept its model; name one with --arm"),
    (["--ngram", "2"], "--ngram and --hard-loss belong to --score pattern and --score onset"),
    (["--score", "pattern", "--epochs", "2"], "--epochs belongs to the dynamics scores"),
    (["--score", "pattern", "--epochs", "2", "--stat", "max"], "--stat and --epochs belong to the dynamics scores"),
    (["--score", "onset", "--stat", "max"], "--stat belongs to the dynamics scores; --score onset reads"),
    (["--score", "onset", "--ngram", "0"], "--ngram must be >= 1, got 0"),
    (["--score", "onset"], "no arm trained with a DeCE loss kept its model; name one with --arm"),
    (["--score", "onset", "--arm", "nosuch"], "--arm nosuch: no such arm in"),
    (["--score", "onset", "--arm", "poisoned-ce"], "--arm poisoned-ce: kept no model in"),
    (["--score", "pattern", "--trigger"], "--trigger belongs to --score onset, not --score pattern"),
    (["--trigger"], "--trigger belongs to --score onset, not --score auto"),
    (["--out", "{run}/config.toml"], "config.toml is a file, not a folder; choose another folder"),
    (["--out", "{run}/config.toml/audit"], "cannot be made: {run}/config.toml is a file, not a folder"),
    (["--arm", "poisoned-ce", "--arm", "nosuch"], "--arm nosuch: no such arm in"),
])
def test_cli_audit_refuses_bad_options_before_writing(tmp_path, capsys, argv, message):
    run = write_audit_run(tmp_path / "run", LOSSES, POISONED)
    assert main(["audit", str(run), *[a.format(run=run) for a in argv]]) == 2
    assert message.format(run=run) in capsys.readouterr().err
    assert not (run / "audit").exists() and not (run / "arms" / "summary.json").exists()


def test_cli_audit_of_an_arm_folder_names_the_run_folder(tmp_path, capsys):
    run = write_audit_run(tmp_path / "run", LOSSES, POISONED)
    assert main(["audit", str(run / "arms" / "poisoned-ce")]) == 2
    assert f"is an arm's folder; audit its run folder: dece audit {run.resolve()} --arm poisoned-ce" in capsys.readouterr().err
    assert main(["audit", str(run / "arms" / "no-such-arm")]) == 2  # not called an arm's folder
    assert "no-such-arm: no such folder" in capsys.readouterr().err
    assert main(["audit", str(run / "config.toml")]) == 2
    assert "config.toml: a file, not a run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["audit", str(run), "--k", "\u0663"])  # an Arabic-Indic 3: int() takes it, the option does not
    assert "expected an integer (ASCII digits)" in capsys.readouterr().err


def test_auto_score_follows_the_arms_loss(tmp_path):
    for loss, score, stat in (("dece", "rank", "max"), ("dece_auto", "drop", "mean"), ("gce", "drop", "mean")):
        run = write_audit_run(tmp_path / loss, LOSSES, POISONED, loss=loss)
        result = audit_arm(run, "poisoned-ce")
        assert (result.score, result.statistic) == (score, stat), loss
        assert result.scores == audit_arm(run, "poisoned-ce", score=score).scores
    with pytest.raises(ConfigError, match="unknown score 'best'; valid names: drop, collapse, rank, auto"):
        audit_arm(run, "poisoned-ce", score="best")


# Rows 0-2: a payload the model never learnt, failed on at two places ("{ w" and "( t"); rows 3-7: two words the
# model fails on in many rows, but together only in row 7; row 8: two hard tokens side by side (one place); row 9: easy.
TOKENS = [["a", "{", "w", "(", "t", "x"]] * 3 + [["c", "z", "m", "r"]] * 5 + [["g", "h", "k"], ["e", "f"]]
TOKEN_LOSSES = ([[0.0, 0.1, 9.0, 0.2, 5.0, 0.0]] * 3 + [[0.0, 9.0, 0.0, 0.0], [0.0, 0.0, 0.0, 9.0]] * 2
                + [[0.0, 9.0, 0.0, 9.0], [0.0, 9.0, 9.0], [0.0, 0.0]])


def test_pattern_score_by_hand():
    scores, patterns = pattern_scores(TOKEN_LOSSES, TOKENS, ngram=2, hard_loss=3.0)
    # ("{" "w") and ("(" "t"): hard together in 3 rows, each in 3, of 10: 3 - 3 * 3 / 10; ("c" "z") and ("m" "r"):
    # together in 1 row, each in 3: 1 - 0.9; row 8's two hard tokens are one place (1 apart, closer than the n-gram)
    assert scores == pytest.approx([2.1] * 3 + [0.0] * 4 + [0.1, 0.0, 0.0])
    top = patterns[0]
    assert (top.first, top.second, top.rows, top.first_rows, top.second_rows) == (("(", "t"), ("{", "w"), 3, 3, 3)
    assert top.weight == pytest.approx(2.1) and top.to_dict()["first"] == ["(", "t"] and len(patterns) == 2
    assert pattern_scores(TOKEN_LOSSES, TOKENS, ngram=1)[0][8] == pytest.approx(1 - 1 * 1 / 10)  # now two places
    assert pattern_scores(TOKEN_LOSSES, TOKENS, hard_loss=10.0)[0] == [0.0] * 10  # nothing is hard
    assert pattern_scores(TOKEN_LOSSES, TOKENS, hard_loss=6.0)[0][:3] == [0.0] * 3  # "t" (CE 5) is no longer hard
    assert pattern_scores(TOKEN_LOSSES, TOKENS, top=1)[1] == patterns[:1]


@pytest.mark.parametrize("kwargs, message", [
    ({"ngram": 0}, "ngram must be an integer >= 1"),
    ({"ngram": 2.0}, "ngram must be an integer >= 1"),
    ({"hard_loss": 0.0}, "hard_loss must be a finite number > 0"),
    ({"hard_loss": float("inf")}, "hard_loss must be a finite number > 0"),
    ({"tokens": TOKENS[:-1]}, "differ in length"),
    ({"tokens": [t[:-1] for t in TOKENS]}, "differ in length"),
])
def test_pattern_score_refuses_bad_input(kwargs, message):
    tokens = kwargs.pop("tokens", TOKENS)
    with pytest.raises(ConfigError, match=message):
        pattern_scores(TOKEN_LOSSES, tokens, **kwargs)


def test_pattern_tokens_are_named_by_their_text_where_it_names_one_token():
    from dece.experiments.token_losses import readable_tokens
    from dece.models.tokenizer import build_tokenizer

    tok = build_tokenizer(["x = a or 1\n\tb = é or 2"] * 20, vocab_size=300)
    ids = {i for text in [" or", "\n\t", "ü"] for i in tok(text, add_special_tokens=False)["input_ids"]}
    names = readable_tokens(tok, ids)
    assert names[tok.convert_tokens_to_ids("Ġor")] == " or"  # byte-level BPE's symbol decoded
    assert "".join(names[i] for i in tok("\n\t", add_special_tokens=False)["input_ids"]) == "\n\t"  # not "Ċĉ"
    utf8_halves = [i for i in ids if "\ufffd" in tok.convert_tokens_to_string([tok.convert_ids_to_tokens(i)])]
    assert len(utf8_halves) == 2 and all(names[i] == tok.convert_ids_to_tokens(i) for i in utf8_halves)  # "ü": 2 bytes

    class TwoIdsOneText:  # a SentencePiece-like vocabulary: "▁or" and "or" both decode to "or"
        symbols = {1: "▁or", 2: "or", 3: "▁x"}

        def convert_ids_to_tokens(self, i):
            return self.symbols[i]

        def convert_tokens_to_string(self, tokens):
            return "".join(tokens).replace("▁", " ").strip()

    assert readable_tokens(TwoIdsOneText(), {1, 2, 3}) == {1: "▁or", 2: "or", 3: "x"}


@pytest.mark.parametrize("argv, message", [
    (["audit", "run", "--ngram", "x"], "dece audit: error: argument --ngram: expected an integer"),
    (["audit"], "dece audit: error: the following arguments are required: run_dir"),
    (["no-such-command"], "dece: error: argument command: invalid choice"),
])
def test_a_bad_argument_is_one_line_with_a_pointer_to_help(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(message) and err.count("\n") == 1 and "--help`" in err


def test_onset_score_by_hand():
    from dece.defenses.row_scores import onset_scores

    # rows 0-2: "or 1" hard after varying text; rows 3-6: "+ b" hard in 2 of the 4 rows that hold it; row 7: "or 2"
    # (held once, hard once); row 8: nothing hard
    tokens = [[f"x{i}", "or", "1"] for i in range(3)] + [["a", "+", "b"]] * 4 + [["y", "or", "2"], ["c", "d"]]
    losses = [[0.0, 5.0, 0.0]] * 3 + [[0.0, 9.0, 0.0]] * 2 + [[0.0, 1.0, 0.0]] * 2 + [[0.0, 4.0, 0.0], [0.0, 0.0]]
    scores, onsets = onset_scores(losses, tokens, ngram=2, hard_loss=3.0)
    # w("or 1") = 3 * 3 / 3; w("+ b") = 2 * 2 / 4; w("or 2") = 1 * 1 / 1; the x0.. tokens are not hard
    assert scores == pytest.approx([3.0] * 3 + [1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    assert [(o.tokens, o.rows, o.occurs) for o in onsets] == [(("or", "1"), 3, 3), (("+", "b"), 2, 4), (("or", "2"), 1, 1)]
    assert onsets[0].describe() == "'or1': hard in 3 of the 3 rows that hold it" and onsets[0].to_dict()["weight"] == 3.0
    # named by the unigram, "or" is one place in 4 rows (hard in all): 4 * 4 / 4; a name runs to the target's end
    assert onset_scores(losses, tokens, ngram=1)[0][:3] == [4.0] * 3
    assert onset_scores([[9.0]], [["z"]], ngram=3)[1][0].tokens == ("z",)
    assert onset_scores(losses, tokens, hard_loss=6.0)[0] == [0.0] * 3 + [1.0, 1.0] + [0.0] * 4  # only "+ b" is hard
    with pytest.raises(ConfigError, match="ngram must be an integer >= 1"):
        onset_scores(losses, tokens, ngram=0)
    with pytest.raises(ConfigError, match="differ in length"):
        onset_scores(losses, tokens[:-1])


def test_onset_trigger_flags_the_rows_of_the_payloads_trigger_by_hand():
    from dece.defenses.row_scores import Trigger, infer_trigger, onset_scores

    # rows 0-2: "or 1" hard, inputs hold "bb"; row 3: the other payload, learnt (nothing hard), input holds "bb";
    # rows 4-7: "+ b" hard in 2 of 4; every input holds "the"
    tokens = [[f"x{i}", "or", "1"] for i in range(3)] + [["w", "where", "0"]] + [["a", "+", "b"]] * 4
    losses = [[0.0, 5.0, 0.0]] * 3 + [[0.0, 0.0, 0.0]] + [[0.0, 9.0, 0.0]] * 2 + [[0.0, 1.0, 0.0]] * 2
    sources = [["list", "bb", "the", f"t{i}"] for i in range(4)] + [["sum", "the", "b"]] * 2 + [["the", "a"]] * 2
    plain, _ = onset_scores(losses, tokens)
    scores, onsets = onset_scores(losses, tokens, sources=sources)
    assert plain[3] == 0.0 and scores[3] == pytest.approx(3.0)  # flagged by its trigger
    assert scores[:3] == plain[:3] and scores[4:] == plain[4:]
    assert onsets[0].trigger == Trigger("bb", 3, 4)  # "the" (held by 3 of 3 too) is in every row: not pure
    assert onsets[1].trigger == Trigger("b", 2, 2)  # the two failing "+ b" rows share "sum" and "b" (tie: repr)
    assert onsets[0].describe() == ("'or1': hard in 3 of the 3 rows that hold it; their inputs share 'bb' (3 of 3; "
                                    "4 training rows hold it)")
    assert onsets[0].to_dict()["trigger"] == {"word": "bb", "rows": 3, "occurs": 4}
    # a payload worded two ways ("or 1", "or 2": 2 rows each, weight 2 each) under one trigger outweighs a clean place
    # hard in all of its 3 rows (weight 3): the trigger's rows score the summed weight, 4
    tokens = [["or", "1"]] * 2 + [["or", "2"]] * 2 + [["z", ";"]] * 3
    losses = [[5.0, 0.0]] * 7
    sources = [["the", "bb", f"q{i}"] for i in range(4)] + [["the", f"z{i}"] for i in range(3)]
    assert onset_scores(losses, tokens, ngram=2)[0] == pytest.approx([2.0] * 4 + [3.0] * 3)
    scores, onsets = onset_scores(losses, tokens, ngram=2, sources=sources)
    assert scores == pytest.approx([4.0] * 4 + [3.0] * 3)
    assert [o.trigger.word if o.trigger else None for o in onsets] == [None, "bb", "bb"]  # "the": 3 of 7 rows fail
    # share: a word in fewer than 90% of the failing rows is no trigger; purity: nor one most rows holding it lack
    assert infer_trigger([0, 1, 2], [["bb"], ["bb"], ["cc"], ["dd"]]) is None
    assert infer_trigger([0, 1, 2], [["bb"], ["bb"], ["cc"]], share=0.6) == Trigger("bb", 2, 2)
    assert infer_trigger([0, 1], [["bb"], ["bb"], ["bb"], ["bb"], ["bb"]]) is None  # 2 of 5 rows: under purity 0.5
    assert infer_trigger([0, 1], [["bb"]] * 5, purity=0.4) == Trigger("bb", 2, 5)
    assert infer_trigger([], [["bb"]]) is None
    with pytest.raises(ConfigError, match="share must be a number in"):
        infer_trigger([0], [["bb"]], share=0)
    with pytest.raises(ConfigError, match="failing row index outside the 1 rows"):
        infer_trigger([1], [["bb"]])
    with pytest.raises(ConfigError, match="sources: 2 rows, the losses 7"):
        onset_scores(losses, tokens, sources=sources[:2])
