"""The experiment config: validated at load time, errors name the key, overrides, TOML round trip."""

import pytest

from dece.errors import ConfigError
from dece.experiments.config import (
    ArmConfig,
    apply_overrides,
    config_from_dict,
    dump_config,
    load_config,
    read_config_data,
)

BASE = {"attack": {"name": "badpre"}, "arms": ["clean-ce", "poisoned-dece"]}


def test_shorthand_arms_and_tables():
    cfg = config_from_dict({**BASE, "arms": ["clean-ce", "poisoned-label-smoothing",
                                             {"name": "mf", "loss": "ce", "lr_scale": 0.1}]})
    assert cfg.arms[0] == ArmConfig(name="clean-ce", data="clean", loss="ce")
    assert cfg.arms[1].loss == "label_smoothing"
    assert cfg.arms[2].data == "poisoned" and cfg.arms[2].lr_scale == 0.1


def test_round_trip_through_toml(tmp_path):
    cfg = config_from_dict({**BASE, "pretrain": {"rows": 50}, "dynamics": {"eval_rows": 3},
                            "model": {"name": "gpt2-tiny", "lora": {"r": 4}}})
    path = tmp_path / "c.toml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize(
    "patch,match",
    [
        ({"typo": 1}, r"unknown key 'typo'; valid keys: arms, attack"),
        ({"train": {"epochz": 1}}, r"unknown key 'train.epochz' .*; valid keys of \[train\]"),
        ({"train": {"epochs": 0}}, r"train.epochs: must be a positive integer"),
        ({"attack": {"rate": 1.5}}, r"attack.rate: must lie in \(0, 1\]"),
        ({"pretrain": {"seed": "x"}}, r"pretrain.seed: must be an integer from 0 to 4294967295, got 'x'"),
        ({"pretrain": {"seed": -1}}, r"pretrain.seed: must be an integer from 0 to 4294967295, got -1"),
        ({"pretrain": {"init_seed": 2**32}}, r"pretrain.init_seed: must be an integer from 0 to 4294967295"),
        ({"attack": {"seed": -3}}, r"attack.seed: must be an integer from 0 to 4294967295, got -3"),
        ({"seed": -1}, r"^seed: must be an integer from 0 to 4294967295, got -1"),
        ({"name": ""}, r"^name: must be a non-empty string without slashes, braces, control characters or surrounding spaces .*got ''"),
        ({"name": "../escape"}, r"^name: must be a non-empty string without slashes"),
        ({"name": " x"}, r"^name: must be a non-empty string without slashes"),
        ({"name": 5}, r"^name: must be a non-empty string without slashes, .*got 5"),
        ({"name": "a\x00b"}, r"^name: must be a non-empty string without slashes, braces, control characters"),
        ({"name": "a\nb"}, r"^name: must be a non-empty string without slashes, braces, control characters"),
        ({"name": "a\u2028b"}, r"^name: must be a non-empty string without slashes, braces, control characters"),
        ({"name": "a\u200bb"}, r"^name: must be a non-empty string without slashes, braces, control characters"),
        ({"name": "a\ue000b"}, r"^name: must be a non-empty string without slashes, braces, control characters"),
        ({"name": "a\ufffeb"}, r"^name: must be a non-empty string without slashes, braces, control characters"),
        ({"name": "exp{1}"}, r"^name: must be a non-empty string without slashes, braces"),
        ({"output_dir": "runs/a\x85"}, r"^output_dir: must not hold control characters"),
        ({"output_dir": "runs/a\x00"}, r"^output_dir: must not hold control characters"),
        ({"output_dir": "runs/{nme}"}, r"^output_dir: '\{nme\}' is not a placeholder: only \{name\} is replaced"),
        ({"pretrain": {"cache_dir": 3}}, r"pretrain.cache_dir: must be a folder path \(a string\), got 3"),
        ({"attack": {"name": "badpree"}}, r"attack.name: unknown attack 'badpree'; valid names:"),
        ({"dataset": {"kind": "lyraa"}}, r"dataset.kind: unknown dataset 'lyraa'; valid names:"),
        ({"model": {"d_model": 30, "heads": 4}}, r"d_model \(30\) must be divisible by heads"),
        ({"model": {"nme": "x"}}, r"model: unknown key 'nme'"),
        ({"arms": ["posioned-ce"]}, r"arms\[0\]: arm shorthand must be .* \(did you mean 'poisoned-ce'\?\)"),
        ({"arms": ["poisoned-decee"]}, r"arms\[0\]: 'poisoned-decee' names no loss .*'poisoned-dece'.*losses: ce, dece"),
        ({"arms": [{"name": "a", "loss": "dece", "loss_params": {"alpha_base": 1.2}}]},
         r"arms\[0\].loss_params: alpha_base must lie in \(0, 1\]"),
        ({"arms": []}, r"arms: at least one arm"),
        ({"arms": ["clean-ce", "clean-ce"]}, r"arm names must be unique"),
        ({"eval": {"metrics": ["bleu", "rouge"]}}, r"eval.metrics: unknown metric 'rouge'"),
        ({"eval": {"max_new_tokens": 300}}, r"eval.max_new_tokens: must be <= model.max_target_length"),
        ({"dynamics": {"eval_rows": -1}}, r"dynamics.eval_rows: must be an integer >= 0"),
        ({"jobs": 0}, r"jobs: must be a positive integer, got 0"),
    ],
)
def test_bad_configs_name_the_key(patch, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({**BASE, **patch})


def test_poisoned_arm_needs_an_attack():
    with pytest.raises(ConfigError, match=r"arms\[1\].data: a poisoned arm needs an \[attack\]"):
        config_from_dict({"arms": ["clean-ce", "poisoned-ce"]})


def test_overrides_parse_toml_literals_and_create_tables():
    data = apply_overrides({"train": {"epochs": 3}}, ["train.epochs=5", "attack.name=ripple", 'eval.metrics=["bleu"]',
                                                      "train.learning_rate=1e-3"])
    assert data == {"train": {"epochs": 5, "learning_rate": 1e-3}, "attack": {"name": "ripple"},
                    "eval": {"metrics": ["bleu"]}}
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["epochs"])


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('arms = ["clean-ce"]\n[train]\nepochs = "many"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: train.epochs"):
        load_config(path)
    path.write_text("arms = [\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_include_deep_merges_then_own_keys_then_overrides(tmp_path):
    from dece.experiments.config import read_config_data

    (tmp_path / "sub").mkdir()
    (tmp_path / "base.toml").write_text('name = "base"\narms = ["clean-ce", "poisoned-ce"]\n'
                                        '[train]\nepochs = 5\nlearning_rate = 1e-3\n')
    (tmp_path / "sub" / "mid.toml").write_text('include = "../base.toml"\n[train]\nepochs = 7\n')
    (tmp_path / "top.toml").write_text('include = "sub/mid.toml"\narms = ["poisoned-dece"]\n')
    data = read_config_data(tmp_path / "top.toml", ["train.learning_rate=2e-3"])
    assert data == {"name": "base", "arms": ["poisoned-dece"], "train": {"epochs": 7, "learning_rate": 2e-3}}


def test_an_including_grid_replaces_the_included_one_whole(tmp_path):
    from dece.experiments.config import read_config_data
    from dece.experiments.sweep import expand_grid

    (tmp_path / "base.toml").write_text('arms = ["clean-ce"]\n[sweep]\ngrid = { seed = [1, 2], "attack.rate" = [0.1, 0.2] }\n'
                                        '[train]\nepochs = 1\n')
    (tmp_path / "top.toml").write_text('include = "base.toml"\n[sweep]\ngrid = { seed = [3] }\n[train]\nbatch_size = 4\n')
    data = read_config_data(tmp_path / "top.toml")
    assert data["sweep"] == {"grid": {"seed": [3]}} and data["train"] == {"epochs": 1, "batch_size": 4}
    assert [c.config.seed for c in expand_grid(data)] == [3]  # not 2 cells with the included rates
    (tmp_path / "top.toml").write_text('include = "base.toml"\n[sweep]\ngrid = { "attack.rate" = [0.3], seed = [3] }\n')
    assert list(read_config_data(tmp_path / "top.toml")["sweep"]["grid"]) == ["seed", "attack.rate"]  # names as before
    (tmp_path / "top.toml").write_text('include = "base.toml"\n[sweep.grid]\nattack.rate = [0.3]\n')  # a nested table
    assert read_config_data(tmp_path / "top.toml")["sweep"]["grid"] == {"attack.rate": [0.3]}  # no included seeds
    (tmp_path / "one.toml").write_text('include = "base.toml"\nsweep = false\nseed = 4\n')  # one experiment of the recipe
    assert "sweep" not in read_config_data(tmp_path / "one.toml") and load_config(tmp_path / "one.toml").seed == 4
    with pytest.raises(ConfigError, match="`sweep = false` drops an included one: such a config is one experiment"):
        expand_grid(read_config_data(tmp_path / "one.toml"))
    assert "sweep" not in read_config_data(tmp_path / "top.toml", ["sweep=false"])
    for grid in ("[1, 2]", '"seed"'):
        (tmp_path / "bad.toml").write_text(f'arms = ["clean-ce"]\n[sweep]\ngrid = {grid}\n')
        with pytest.raises(ConfigError, match="sweep.grid: must be a table of key = \\[values\\]"):
            expand_grid(read_config_data(tmp_path / "bad.toml"))
        (tmp_path / "bad.toml").write_text(f'include = "base.toml"\n[sweep]\ngrid = {grid}\n')
        with pytest.raises(ConfigError, match="sweep.grid: must be a table"):
            read_config_data(tmp_path / "bad.toml")


def test_a_layer_that_names_another_dataset_or_attack_drops_the_inherited_parameters(tmp_path):
    """The built-in's dataset options (seed, n) mean nothing to a jsonl dataset, nor BadPre's params to
    another attack: an including file or a --set that switches the component starts from its defaults."""
    (tmp_path / "own.toml").write_text('include = "builtin:default"\n[dataset]\nkind = "jsonl"\n'
                                       'options = { path = "d/{split}.jsonl" }\n')
    assert read_config_data(tmp_path / "own.toml")["dataset"]["options"] == {"path": "d/{split}.jsonl"}
    (tmp_path / "kind.toml").write_text('include = "builtin:default"\n[dataset]\nkind = "lyra"\n')
    assert "options" not in read_config_data(tmp_path / "kind.toml")["dataset"]
    (tmp_path / "same.toml").write_text('include = "builtin:default"\n[dataset]\nkind = "builtin"\n')
    assert read_config_data(tmp_path / "same.toml")["dataset"]["options"] == {"seed": 7, "n": 1500}  # same kind: kept
    (tmp_path / "p.toml").write_text('include = "builtin:default"\n[attack]\nparams = { word = "cf" }\n')
    assert read_config_data(tmp_path / "p.toml", ["attack.name=\"ripple\""])["attack"] == {
        "name": "ripple", "rate": 0.15, "seed": 1}
    assert read_config_data(tmp_path / "p.toml", ["attack.name=\"badpre\""])["attack"]["params"] == {"word": "cf"}
    assert read_config_data(tmp_path / "p.toml", ["attack.name=\"ripple\"", "attack.params={count=2}"])[
        "attack"]["params"] == {"count": 2}
    # an earlier --set of the options stays; restating the default component keeps what it inherited
    assert read_config_data(tmp_path / "p.toml", ['dataset.options.path="d/{split}.jsonl"', 'dataset.kind="jsonl"'])[
        "dataset"]["options"] == {"path": "d/{split}.jsonl"}
    (tmp_path / "a.toml").write_text('[dataset]\noptions = { n = 100 }\n[attack]\nparams = { word = "zzz" }\n')
    (tmp_path / "b.toml").write_text('include = "a.toml"\n[dataset]\nkind = "builtin"\n[attack]\nname = "badpre"\n')
    restated = read_config_data(tmp_path / "b.toml", ['attack.name="badpre"'])
    assert restated["dataset"]["options"] == {"n": 100} and restated["attack"]["params"] == {"word": "zzz"}


def test_include_builtin_default_and_errors(tmp_path):
    from dece.cli.demo import default_config_path
    from dece.experiments.config import dump_config

    (tmp_path / "x.toml").write_text('include = "builtin:default"\nname = "mine"\n[attack]\nrate = 0.05\n')
    cfg = load_config(tmp_path / "x.toml")
    default = load_config(default_config_path())
    assert cfg.name == "mine" and cfg.attack.rate == 0.05 and cfg.attack.name == default.attack.name
    assert (default.name, default.output_dir, cfg.output_dir) == ("demo", "runs/demo", "runs/mine")  # not the demo's folder
    assert config_from_dict({**BASE, "name": "x", "output_dir": "out/{name}-2"}).output_dir == "out/x-2"
    assert config_from_dict({k: v for k, v in BASE.items() if k not in ("name", "output_dir")}).output_dir == "runs/experiment"
    assert cfg.model == default.model and cfg.train == default.train
    assert dump_config(cfg) != dump_config(default)
    (tmp_path / "y.toml").write_text('include = "builtin:nope"\n')
    with pytest.raises(ConfigError, match="no such built-in config; valid: builtin:default"):
        load_config(tmp_path / "y.toml")
    (tmp_path / "a.toml").write_text('include = "b.toml"\n')
    (tmp_path / "b.toml").write_text('include = "a.toml"\n')
    with pytest.raises(ConfigError, match="include cycle"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text('include = "missing.toml"\n')
    with pytest.raises(ConfigError, match=r"missing.toml does not exist \(included by .*c.toml\)"):
        load_config(tmp_path / "c.toml")


def test_every_config_field_is_documented():  # docs/config.md is current: tests/test_docs.py
    import dataclasses

    from dece.experiments.config import REFERENCE_TABLES, ExperimentConfig

    for _, cls in REFERENCE_TABLES:
        for f in dataclasses.fields(cls or ExperimentConfig):
            assert f.metadata.get("doc"), f"{(cls or ExperimentConfig).__name__}.{f.name} has no doc"


def test_an_unknown_key_suggests_the_closest_with_its_meaning():
    with pytest.raises(ConfigError, match=r"unknown key 'train.epochz' \(did you mean 'epochs': passes over the training"):
        config_from_dict({"arms": ["clean-ce"], "train": {"epochz": 3}})


@pytest.mark.parametrize("value", [0, 101, 1.5, "2"])
def test_attack_duplicates_must_be_a_small_positive_integer(value):
    with pytest.raises(ConfigError, match=r"attack.duplicates: must be an integer in \[1, 100\]"):
        config_from_dict({"arms": ["poisoned-ce"], "attack": {"name": "badpre", "duplicates": value}})


@pytest.mark.parametrize("attack, message", [({"near_duplicates": True}, "needs duplicates > 1"),
                                             ({"near_duplicates": "yes", "duplicates": 2}, "must be true or false")])
def test_near_duplicates_need_copies_and_a_boolean(attack, message):
    with pytest.raises(ConfigError, match=f"attack.near_duplicates: {message}"):
        config_from_dict({"arms": ["poisoned-ce"], "attack": {"name": "badpre", **attack}})
    assert config_from_dict({"arms": ["poisoned-ce"], "attack": {"name": "badpre", "duplicates": 2,
                                                                 "near_duplicates": True}}).attack.near_duplicates


@pytest.mark.parametrize("option", [{"rows": 5}, {"duplicates": 2}])
def test_given_data_refuses_the_poisoning_options_it_would_ignore(option):
    with pytest.raises(ConfigError, match=r"attack\.(rows|duplicates): attack 'given' trains on the rows as given"):
        config_from_dict({"arms": ["poisoned-ce"], "attack": {"name": "given", "params": {"detector": "badpre"}, **option}})


def test_arch_config_is_for_hf_models_and_outside_the_fingerprint():
    from dece.experiments.store import arm_fingerprint

    with pytest.raises(ConfigError, match="model.arch_config: describes an 'hf:' checkpoint"):
        config_from_dict({"arms": ["clean-ce"], "model": {"arch_config": "x.json"}})
    plain = config_from_dict({"arms": ["clean-ce"], "model": {"name": "hf:a/b"}})
    described = config_from_dict({"arms": ["clean-ce"], "model": {"name": "hf:a/b", "arch_config": "x.json"}})
    assert arm_fingerprint(plain, plain.arms[0]) == arm_fingerprint(described, described.arms[0])


@pytest.mark.parametrize("value", ["", ".", "  "])
def test_an_empty_output_dir_is_refused(value):
    with pytest.raises(ConfigError, match="output_dir: must name a run folder"):
        config_from_dict({"arms": ["clean-ce"], "output_dir": value})
