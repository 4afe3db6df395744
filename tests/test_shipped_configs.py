"""Every shipped config validates (offline, nothing trained), and the paper sweeps expand to the stated grid."""

from pathlib import Path

import pytest

from dece.data.builtin import pretraining_corpus
from dece.experiments import load_config
from dece.experiments.base_model import pretrain_key
from dece.experiments.config import read_config_data
from dece.experiments.sweep import expand_grid, has_sweep

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.toml")) + [ROOT / "src" / "dece" / "configs" / "default.toml"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_validates(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # data_root is relative to the repository root
    if has_sweep(path):
        assert expand_grid(read_config_data(path))
    else:
        load_config(path)


def test_paper_lyra_grid_and_one_shared_base(monkeypatch):
    monkeypatch.chdir(ROOT)
    cells = expand_grid(read_config_data(ROOT / "configs" / "paper-lyra.toml"))
    assert len(cells) == 3 * 3 * 3 * 3  # arm groups x rates x attacks x seeds
    assert {c.config.attack.rate for c in cells} == {0.05, 0.02, 0.01}
    assert {c.config.attack.name for c in cells} == {"badpre", "ripple", "grammar"}
    assert {c.config.seed for c in cells} == {1, 2, 3}
    first = cells[:9]  # CE vs DeCE at 5% come first, three seeds per attack
    assert all(c.config.attack.rate == 0.05 and "poisoned-dece" in [a.name for a in c.config.arms] for c in first)
    corpus = pretraining_corpus(cells[0].config.pretrain.rows, cells[0].config.pretrain.seed)
    assert len({pretrain_key(c.config, corpus) for c in cells}) == 1  # every seed fine-tunes the same base


def test_the_badpre5_stage_names_the_same_cells_as_the_full_grid(monkeypatch):
    monkeypatch.chdir(ROOT)
    full = {c.name: c.config for c in expand_grid(read_config_data(ROOT / "configs" / "paper-lyra.toml"))}
    stage = expand_grid(read_config_data(ROOT / "configs" / "paper-lyra-badpre5.toml"))
    assert len(stage) == 6 and all(c.name in full for c in stage)
    assert all(c.config == full[c.name] for c in stage)  # same config: the same fingerprints and folders
