"""`dece payload-prior`: a model's probability of each poisoned row's first payload token, checked against a
direct teacher-forced softmax, and DeCE's half-pull threshold against the loss's own weight."""

import dataclasses
import json
import re
import statistics
import tomllib

import pytest
import tomli_w
import torch

from dece.cli import main
from dece.experiments.config import dump_config
from dece.experiments.data_prep import prepare_data
from dece.experiments.store import read_records
from dece.experiments.payload_prior import (
    half_pull_threshold,
    payload_positions,
    payload_prior,
    poisoned_pairs,
    pull_share,
)
from dece.models import build_model, build_tokenizer, encode_examples

from test_experiments_pipeline import TINY_MODEL, tiny_config


@pytest.mark.parametrize("alpha_base, epoch, eps", [(0.985, 1, 0.05), (0.9, 3, 0.0), (0.99, 20, 0.1)])
def test_at_the_threshold_dece_pulls_the_label_at_half_strength(alpha_base, epoch, eps):
    p = half_pull_threshold(alpha_base, epoch, eps)
    alpha = alpha_base ** epoch
    assert alpha * p / (alpha * p + (1 - alpha) * (1 - eps)) == pytest.approx(0.5)  # r of the module docstring
    assert half_pull_threshold(0.985, 1, 0.05) == pytest.approx(0.015 * 0.95 / 0.985)
    assert half_pull_threshold(0.5, 1e308, 0.05) == float("inf")  # alpha underflows to 0
    assert pull_share(p, alpha, eps) == pytest.approx(0.5)
    assert pull_share(0.0, alpha, eps) == 0.0 and pull_share(1.0, 1.0, eps) == 1.0
    assert pull_share(1e-3, 0.985, 0.05) == pytest.approx(0.985e-3 / (0.985e-3 + 0.015 * 0.95))  # ~7% of CE's pull
    assert pull_share(1e-3, 0.0, 0.05) == 0.0  # alpha 0: no pull


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prior")
    cfg = tiny_config(tmp, dataset={"kind": "builtin", "options": {"n": 40, "seed": 3}},
                      model={**TINY_MODEL, "max_target_length": 160})  # the payload lies past token 48
    data = prepare_data(cfg)
    texts = [t for e in data.poisoned_train for t in (e.src, e.tgt)]
    torch.manual_seed(0)
    model, tokenizer, _ = build_model(cfg.model, build_tokenizer(texts, vocab_size=300))
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "model")
    path = tmp / "tiny.toml"
    path.write_text(dump_config(cfg))
    return cfg, data, model, tokenizer, tmp


def test_the_prior_is_the_softmax_at_the_first_token_where_the_targets_differ(saved):
    cfg, data, model, tokenizer, _ = saved
    pairs = poisoned_pairs(data.poisoned_train, data.clean_train)
    assert len(pairs) == data.poison_report["n_poisoned"] == 10
    summary = payload_prior(model, tokenizer, True, cfg.model, pairs, alpha_base=0.985, label_smoothing=0.05)
    direct = []
    model.eval()
    for (poisoned, clean), at in zip(pairs, payload_positions(tokenizer, pairs, cfg.model.max_target_length)):
        if at is None:  # the payload lies past max_target_length: left out
            continue
        p_ids, c_ids = (tokenizer(t)["input_ids"][: cfg.model.max_target_length] for t in (poisoned.tgt, clean.tgt))
        assert p_ids[:at] == c_ids[:at] and p_ids[at] != c_ids[at]  # the first token of the payload
        row = encode_examples([poisoned], tokenizer, cfg.model, True).rows[0]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]])).logits
        direct.append(torch.softmax(logits[0, at].double(), -1)[row["labels"][at]].item())
    assert summary["rows"] == len(direct) >= 5 and summary["poisoned_rows"] == 10
    assert summary["left_out"] == 10 - len(direct)
    assert summary["p_mean"] == pytest.approx(sum(direct) / len(direct), rel=1e-4)
    assert summary["p_median"] == pytest.approx(statistics.median(direct), rel=1e-4)
    threshold = summary["threshold"]
    assert summary["above_threshold_pct"] == 100 * sum(p >= threshold for p in direct) / len(direct)
    shares = [pull_share(p, 0.985, 0.05) for p in direct]
    assert summary["pull_mean"] == pytest.approx(sum(shares) / len(shares), rel=1e-4)
    assert summary["pull_median"] == pytest.approx(statistics.median(shares), rel=1e-4)
    low = payload_prior(model, tokenizer, True, cfg.model, pairs, alpha_base=0.999, label_smoothing=0.05)
    assert low["threshold"] < threshold and low["above_threshold_pct"] >= summary["above_threshold_pct"]
    short = dataclasses.replace(cfg.model, max_target_length=TINY_MODEL["max_target_length"])
    with pytest.raises(ValueError, match="none of the 10 poisoned rows has its payload inside the first 48"):
        payload_prior(model, tokenizer, True, short, pairs, alpha_base=0.985, label_smoothing=0.05)


def test_the_command_prints_the_summary_and_refuses_bad_input_first(saved, capsys):
    _, _, _, _, tmp = saved
    config, model = str(tmp / "tiny.toml"), str(tmp / "model")
    assert main(["payload-prior", model, config, "--alpha-base", "0.9"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[: out.rindex("}") + 1])
    assert summary["attack"] == "badpre" and 5 <= summary["rows"] <= 10 and summary["alpha_base"] == 0.9
    assert summary["threshold"] == pytest.approx(0.1 * 0.95 / 0.9)
    assert f"of {summary['rows']} poisoned rows" in out and f"first payload token at or above {summary['threshold']:.4f}" in out
    assert f"{100 * summary['pull_median']:.3g}% of CE's at the median row" in out
    assert main(["payload-prior", model, config, "--epoch", "1e308"]) == 0  # alpha underflows to 0: no threshold
    out = capsys.readouterr().out
    huge = json.loads(out[: out.rindex("}") + 1])
    assert huge["threshold"] is None and huge["above_threshold_pct"] == 0.0 and "alpha is 0 at epoch" in out
    assert main(["payload-prior", model, config, "--alpha-base", "1e-300"]) == 0  # threshold 1e300: none reaches it
    out = capsys.readouterr().out.splitlines()[-1]
    assert out.startswith("no token reaches the threshold at epoch 1 (9.5e+299 > 1") and len(out) < 300
    for args, message in ((["--epoch", "0"], "--epoch: must be a finite number >= 1"),
                          (["--epoch", "0.5"], "--epoch: must be a finite number >= 1"),  # the loss counts from 1
                          (["--epoch", "nan"], "--epoch: must be a finite number >= 1"),
                          (["--label-smoothing", "1"], r"--label-smoothing: must lie in \[0, 1\)"),
                          (["--alpha-base", "1.5"], "--alpha-base: alpha_base"), (["--set", "attack.rate=0"], "attack.rate: must lie")):
        assert main(["payload-prior", model, config, *args]) == 2
        assert re.search(message, capsys.readouterr().err)
    clean = {k: v for k, v in tomllib.loads((tmp / "tiny.toml").read_text()).items() if k != "attack"}
    (tmp / "clean.toml").write_text(tomli_w.dumps({**clean, "arms": ["clean-ce"]}))
    assert main(["payload-prior", model, str(tmp / "clean.toml")]) == 2
    assert "clean.toml: no [attack]; the prior is measured on the poisoned training rows" in capsys.readouterr().err
    assert main(["payload-prior", model, config, "--set", "attack.name=drop_where_clean_label"]) == 2
    assert "(attack 'drop_where_clean_label'): the" in (err := capsys.readouterr().err) and "clean-label" in err
    sweep = tomllib.loads((tmp / "tiny.toml").read_text()) | {"sweep": {"grid": {"seed": [1, 2]}}}
    (tmp / "sweep.toml").write_text(tomli_w.dumps(sweep))
    assert main(["payload-prior", model, str(tmp / "sweep.toml")]) == 2
    assert "sweep.toml is a sweep: give the config of one cell" in capsys.readouterr().err
    assert main(["payload-prior", str(tmp / "nowhere"), config]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_the_dynamics_record_deces_pull_on_the_payload_as_payload_prior_measures_it(tmp_path):
    """The per-epoch ``pull_payload`` of a DeCE arm is :func:`payload_prior`'s ``pull_mean`` of the model at that
    epoch (the last epoch's model is the saved one), at the alpha that epoch trained with."""
    from dece.experiments import run_experiment
    from dece.experiments.arm import load_trained

    cfg = tiny_config(tmp_path, arms=["poisoned-dece"], dataset={"kind": "builtin", "options": {"n": 40, "seed": 3}},
                      model={**TINY_MODEL, "max_target_length": 160},  # the payloads lie inside the targets
                      dynamics={"eval_rows": 0, "loss_rows": 4})
    run_experiment(cfg, log=lambda line: None)
    dyn = read_records(tmp_path / "run" / "arms" / "poisoned-dece" / "dynamics.jsonl")
    assert [r["epoch"] for r in dyn] == [1, 2] and all(0.0 < r["pull_payload"] < 1.0 for r in dyn)
    data = prepare_data(cfg)
    model, tokenizer, is_enc_dec = load_trained(cfg.model, tmp_path / "run" / "arms" / "poisoned-dece" / "model")
    summary = payload_prior(model, tokenizer, is_enc_dec, cfg.model, poisoned_pairs(data.poisoned_train, data.clean_train),
                            alpha_base=0.985, label_smoothing=0.05, epoch=2)
    assert dyn[-1]["alpha"] == pytest.approx(0.985 ** 2)
    assert dyn[-1]["pull_payload"] == pytest.approx(summary["pull_mean"], rel=1e-3)
