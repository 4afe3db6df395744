"""The defense registry and its config side: parameters are checked by name and type and range,
arms name defenses (tables or shorthand), errors name the arm's key, fingerprints stay stable."""

import dataclasses

import pytest

from dece.defenses import DEFENSES, DataDefense, InputDefense, TrainingDefense, get_defense
from dece.errors import ConfigError, UnknownNameError
from dece.experiments.arm import defense_lr_factor
from dece.experiments.store import arm_fingerprint
from dece.experiments.config import ArmConfig, config_from_dict, dump_config, load_config

BASE = {"attack": {"name": "badpre"}, "arms": ["poisoned-ce"]}


def test_registry_lists_every_defense_with_its_kind():
    kinds = {name: DEFENSES.get(name).kind for name in DEFENSES.names()}
    assert kinds == {"activation_clustering": "data", "bki": "data", "spectral_signature": "data", "dece_filter": "data", "dedup": "data",
                     "near_dedup": "data",
                     "onion": "input", "paraphrase": "input", "moderate_fitting": "training"}
    for name in DEFENSES.names():
        d = get_defense(name)
        assert isinstance(d, {"data": DataDefense, "input": InputDefense, "training": TrainingDefense}[d.kind])
        assert "Parameters:" in type(d).__doc__  # every parameter is documented
        for param in d.params:
            assert f"        {param}:" in type(d).__doc__, (name, param)


@pytest.mark.parametrize(
    "name,params,match",
    [
        ("onion", {"treshold": 1}, r"defense 'onion': unknown parameter 'treshold'; valid parameters: score, threshold"),
        ("onion", {"threshold": "high"}, r"parameter 'threshold': expected a number or none"),
        ("onion", {"lm": "gpt2"}, r"parameter 'lm': must be 'ngram' or 'hf:<name or path>'"),
        ("onion", {"score": "ratio"}, r"parameter 'score': must be one of log_ratio, difference"),
        ("spectral_signature", {"rate": 1.5}, r"parameter 'rate': must lie in \(0, 1\)"),
        ("spectral_signature", {"multiplier": 0}, r"parameter 'multiplier': must be > 0"),
        ("activation_clustering", {"max_share": 0.7}, r"parameter 'max_share': must lie in \(0, 0.5\]"),
        ("activation_clustering", {"components": 2.5}, r"parameter 'components': expected an integer"),
        ("bki", {"keywords": 0}, r"parameter 'keywords': must be >= 1"),
        ("bki", {"top_words": True}, r"parameter 'top_words': expected an integer"),
        ("bki", {"representation": "cls"}, r"parameter 'representation': must be one of source, first_step"),
        ("moderate_fitting", {"lr_scale": 2}, r"parameter 'lr_scale': must lie in \(0, 1\]"),
        ("paraphrase", {"model": "t5"}, r"parameter 'model': must be 'rules' or 'hf:<name or path>'"),
    ],
)
def test_bad_parameters_name_the_parameter(name, params, match):
    with pytest.raises(ConfigError, match=match):
        get_defense(name, **params)


SEEDED = sorted(name for name in DEFENSES if "seed" in {f.name for f in dataclasses.fields(DEFENSES.get(name))})


@pytest.mark.parametrize("name", SEEDED)
def test_every_seed_parameter_takes_what_numpy_and_torch_take(name):
    assert len(SEEDED) >= 3  # activation_clustering, bki, near_dedup at least
    for bad in (-1, 2**32):
        with pytest.raises(ConfigError, match=rf"defense '{name}', parameter 'seed': must be an integer from 0 to 4294967295"):
            get_defense(name, seed=bad)
    assert get_defense(name, seed=2**32 - 1).seed == 2**32 - 1


def test_unknown_defense_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="unknown defense 'onoin'; valid names: activation_clustering, bki"):
        get_defense("onoin")


def test_shorthand_arms_map_to_losses_and_defenses():
    cfg = config_from_dict({**BASE, "arms": [
        "poisoned-dece", "poisoned-gce", "poisoned-label-smoothing", "poisoned-onion", "poisoned-moderate_fitting",
        "poisoned-moderate-fitting", "poisoned-bki", "poisoned-spectral-signature", "poisoned-dece-onion",
        "clean-activation_clustering", "poisoned-in-trust-paraphrase"]})
    got = [(a.data, a.loss, a.defense) for a in cfg.arms]
    assert got == [("poisoned", "dece", None), ("poisoned", "gce", None), ("poisoned", "label_smoothing", None),
                   ("poisoned", "ce", "onion"), ("poisoned", "ce", "moderate_fitting"),
                   ("poisoned", "ce", "moderate_fitting"), ("poisoned", "ce", "bki"),
                   ("poisoned", "ce", "spectral_signature"), ("poisoned", "dece", "onion"),
                   ("clean", "ce", "activation_clustering"), ("poisoned", "in_trust", "paraphrase")]
    mf = cfg.arms[4]
    assert defense_lr_factor(mf) == pytest.approx(0.1) and mf.lr_scale == 1.0
    assert defense_lr_factor(cfg.arms[0]) == 1.0 and defense_lr_factor(cfg.arms[3]) == 1.0


@pytest.mark.parametrize(
    "arm,match",
    [
        ({"name": "a", "defense": "onoin"}, r"arms\[0\].defense: unknown defense 'onoin'; valid names:"),
        ({"name": "a", "defense": "onion", "defense_params": {"threshold": "x"}},
         r"arms\[0\].defense_params: defense 'onion', parameter 'threshold': expected"),
        ({"name": "a", "defense": "bki", "defense_params": {"top_k": 3}},
         r"arms\[0\].defense_params: defense 'bki': unknown parameter 'top_k'"),
        ({"name": "a", "defense_params": {"threshold": 1}}, r"arms\[0\].defense_params: given without a defense"),
        ({"name": "a", "defense": "onion", "defense_params": 3}, r"arms\[0\].defense_params: must be a table"),
        ("poisoned-onoin", r"arms\[0\]: 'poisoned-onoin' names no loss or defense .*'poisoned-onion'.*defenses: .*onion"),
    ],
)
def test_bad_defense_arms_name_the_key(arm, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({**BASE, "arms": [arm]})


def test_defense_arms_round_trip_through_toml(tmp_path):
    cfg = config_from_dict({**BASE, "arms": [
        "poisoned-ce", {"name": "ss", "defense": "spectral_signature", "defense_params": {"rate": 0.1, "multiplier": 1.0}},
        {"name": "on", "loss": "dece", "defense": "onion", "defense_params": {"threshold": 0.3}}]})
    path = tmp_path / "c.toml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


def test_fingerprints_hash_only_non_default_values():
    cfg = config_from_dict({**BASE, "arms": ["poisoned-ce", "poisoned-onion"]})
    plain, onion = cfg.arms
    # spelling out defaults (as a newer version adding fields with defaults would) changes nothing
    explicit = config_from_dict({**BASE, "train": {"fused_head": False, "epoch_mode": "floor"},
                                 "arms": [{"name": "poisoned-ce", "loss": "ce", "defense_params": {}}, "poisoned-onion"]})
    assert arm_fingerprint(explicit, explicit.arms[0]) == arm_fingerprint(cfg, plain)
    assert arm_fingerprint(cfg, plain) != arm_fingerprint(config_from_dict({**BASE, "train": {"fused_head": True},
                                                                            "arms": ["poisoned-ce"]}), plain)
    assert arm_fingerprint(cfg, onion) != arm_fingerprint(cfg, dataclasses.replace(onion, defense="paraphrase"))
    tuned = dataclasses.replace(onion, defense_params={"threshold": 0.5})
    assert arm_fingerprint(cfg, onion) != arm_fingerprint(cfg, tuned)
    assert ArmConfig(name="x").defense is None
    # nor do the experiment's name, output folder, process and thread counts: an arm can move between runs
    elsewhere = config_from_dict({**BASE, "name": "other", "output_dir": "runs/other", "jobs": 3,
                                  "train": {"threads": 2}, "arms": ["poisoned-ce"]})
    assert arm_fingerprint(elsewhere, elsewhere.arms[0]) == arm_fingerprint(cfg, plain)


def test_cli_lists_the_defenses(capsys):
    from dece.cli import main

    assert main(["defenses"]) == 0
    out = capsys.readouterr().out
    for name in DEFENSES.names():
        assert f"\n{name} " in f"\n{out}"
    assert "prefix='paraphrase: '" in out and "[training]" in out


def test_spectral_signature_without_an_attack_needs_its_rate():
    with pytest.raises(ConfigError, match=r"arms\[0\].defense_params: spectral_signature needs 'rate'"):
        config_from_dict({"arms": ["clean-spectral_signature"]})
    cfg = config_from_dict({"arms": [{"name": "a", "data": "clean", "defense": "spectral_signature",
                                      "defense_params": {"rate": 0.1}}]})
    assert cfg.arms[0].defense_params == {"rate": 0.1}
