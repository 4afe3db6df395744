"""Every shipped config validates (offline, nothing trained), and the paper sweeps expand to the stated grid."""

import dataclasses
import functools
from pathlib import Path

import pytest

from dece.data.builtin import pretraining_corpus
from dece.defenses import get_defense
from dece.experiments import load_config
from dece.experiments.base_model import corpus_digest, pretrain_key
from dece.experiments.config import read_config_data
from dece.experiments.plan import plan_arm
from dece.experiments.sweep import expand_grid, has_sweep

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.toml")) + [ROOT / "src" / "dece" / "configs" / "default.toml"]


@functools.cache
def _digest(rows: int, seed: int) -> str:  # the 10,000-row corpus takes seconds to build: once per file
    return corpus_digest(pretraining_corpus(rows, seed))


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
    digest = _digest(cells[0].config.pretrain.rows, cells[0].config.pretrain.seed)
    assert len({pretrain_key(c.config, digest) for c in cells}) == 1  # every seed fine-tunes the same base


CE_DECE_WARM, CLEAN, WARM = ["poisoned-ce", "poisoned-dece", "poisoned-dece-warm3"], ["clean-ce"], ["poisoned-dece-warm3"]


@pytest.mark.parametrize("name, folder, kind, attack, base, groups", [
    ("paper-bugs2fix", "paper-bugs2fix-repair", "bugs2fix_small", "deadcode", "python_repair",
     [["poisoned-ce", "poisoned-dece"], CLEAN, WARM, ["poisoned-dece-0.95", "poisoned-dece-0.9"]]),  # CE vs DeCE first
    ("paper-summarisation", "paper-summarisation", "code_docstring_py", "deadcode_summary", "python_functions",
     [CE_DECE_WARM, CLEAN]),
    ("paper-defect", "paper-defect", "devign", "deadcode_defect", None, [CE_DECE_WARM, CLEAN])])
def test_the_other_paper_tasks_expand_to_ce_and_dece_over_three_seeds(monkeypatch, name, folder, kind, attack, base,
                                                                      groups):
    monkeypatch.chdir(ROOT)
    cells = expand_grid(read_config_data(ROOT / "configs" / f"{name}.toml"))
    assert len(cells) == len(groups) * 3  # arm groups x seeds, at 5%
    assert [[a.name for a in c.config.arms] for c in cells[::3]] == groups
    assert {c.config.seed for c in cells} == {1, 2, 3} and {c.config.attack.rate for c in cells} == {0.05}
    assert all(c.config.output_dir.startswith(f"runs/{folder}/cells/") for c in cells)
    for c in cells:  # no Lyra key leaks through the include: the task's own data and attack, no built-in base
        d = c.config
        assert (d.dataset.kind, d.attack.name, d.dataset.train_split) == (kind, attack, "valid")
        assert (d.pretrain.corpus if d.pretrain else None) == base


def test_the_badpre5_stage_names_the_same_cells_as_the_full_grid(monkeypatch):
    monkeypatch.chdir(ROOT)
    full = {c.name: c.config for c in expand_grid(read_config_data(ROOT / "configs" / "paper-lyra.toml"))}
    stage = expand_grid(read_config_data(ROOT / "configs" / "paper-lyra-badpre5.toml"))
    assert len(stage) == 6 and all(c.name in full for c in stage)
    assert all(c.config == full[c.name] for c in stage)  # same config: the same fingerprints and folders


@pytest.mark.parametrize("stage, in_map, cells", [("robustness-5pct.toml", 1, 1), ("robustness-duplicates.toml", 3, 6),
                                                  ("robustness-meaning.toml", 2, 3)])
def test_the_robustness_stages_are_cells_of_the_map(monkeypatch, stage, in_map, cells):
    """A stage's CE/DeCE cells are the map's (with its seeds 1-3, as the map's comment runs them): the same
    config, fingerprints and folders; its other arms (DeCE after a CE warm-up) or attacks add cells beside them."""
    monkeypatch.chdir(ROOT)
    full = {c.name: c.config for c in expand_grid(read_config_data(ROOT / "configs" / "robustness-map.toml",
                                                                   ["sweep.grid.seed=[1, 2, 3]"]))}
    part = expand_grid(read_config_data(ROOT / "configs" / stage))
    assert len(part) == cells and sum(c.name in full for c in part) == in_map
    # the same config but for how many arms run at once: the same fingerprints and folders
    assert all(dataclasses.replace(c.config, jobs=full[c.name].jobs) == full[c.name] for c in part if c.name in full)
    # the other cells: DeCE after a warm-up, or an attack the map does not hold
    assert all(c.name.startswith("arms=poisoned-dece-warm3__") or c.config.attack.name == "vary_tautology"
               for c in part if c.name not in full)


def test_the_lyra_pattern_filter_reads_the_maps_dece_arm(monkeypatch):
    """robustness-lyra-pattern: the map's 5% BadPre cell (seed 1) with the pattern filter beside its DeCE arm,
    whose fingerprint is the map's own DeCE arm's (a finished folder can be copied between the two)."""
    from dece.experiments.store import arm_fingerprint

    monkeypatch.chdir(ROOT)
    full = {c.name: c.config for c in expand_grid(read_config_data(ROOT / "configs" / "robustness-5pct.toml"))}
    (cell,) = expand_grid(read_config_data(ROOT / "configs" / "robustness-lyra-pattern.toml"))
    (map_cfg,) = full.values()
    d = cell.config
    dece, filtered = d.arms
    assert arm_fingerprint(d, dece) == arm_fingerprint(map_cfg, map_cfg.arms[1])
    assert (d.seed, d.attack.name, d.attack.rate, d.attack.duplicates) == (1, "badpre", 0.05, 1)
    assert (filtered.loss, filtered.defense, filtered.defense_params) == ("ce", "dece_filter", {"score": "pattern"})
    assert d.source_arm(filtered).name == dece.name == map_cfg.arms[1].name


def test_the_lyra_onset_filter_reads_the_warm_up_dece_arm_of_each_seed(monkeypatch):
    """robustness-lyra-onset: seeds 1-3 of the map's 5% BadPre cell with DeCE after a CE warm-up and the onset filter
    reading it, and clean CE on the same data; the warm-up arm is paper-lyra-warmup's DeCE arm in the map's recipe."""
    monkeypatch.chdir(ROOT)
    cells = expand_grid(read_config_data(ROOT / "configs" / "robustness-lyra-onset.toml"))
    assert len(cells) == 6 and sorted({c.config.seed for c in cells}) == [1, 2, 3]
    for cell in cells:
        d = cell.config
        assert (d.attack.name, d.attack.rate, d.attack.duplicates) == ("badpre", 0.05, 1)
        if len(d.arms) == 1:
            assert d.arms[0].name == "clean-ce" and d.arms[0].data == "clean"
            continue
        warm, filtered = d.arms
        assert (warm.loss, warm.loss_params) == ("dece_auto", {"alpha_base": 0.985, "max_wait": 3})
        assert (filtered.loss, filtered.defense, filtered.defense_params) == (
            "ce", "dece_filter", {"score": "onset", "ngram": 3, "source": "poisoned-dece-warm3"})
        assert d.source_arm(filtered) is warm and not get_defense("dece_filter", **filtered.defense_params).needs_dynamics
    held_out = expand_grid(read_config_data(ROOT / "configs" / "robustness-lyra-onset-heldout.toml"))
    warm = next(c for c in cells if len(c.config.arms) == 2).config.arms[0]
    assert sorted(c.config.seed for c in held_out) == [4, 5]
    assert all([(a.name, a.loss, a.loss_params) for a in c.config.arms] == [(warm.name, warm.loss, warm.loss_params)]
               for c in held_out)
    # the same warm-up arm and the filter with the trigger against the payloads without a fixed string, in the
    # map's recipe and folder
    meaning = expand_grid(read_config_data(ROOT / "configs" / "robustness-meaning-onset.toml"))
    pair = next(c for c in cells if len(c.config.arms) == 2).config
    assert sorted(c.config.attack.name for c in meaning) == ["drop_where", "flip_equality", "vary_tautology"]
    for cell in meaning:
        d = cell.config
        warm, filtered = d.arms
        assert warm == pair.arms[0] and (d.seed, d.attack.rate, d.attack.duplicates) == (1, 0.05, 1)
        assert filtered.defense_params == {**pair.arms[1].defense_params, "trigger": True}
        # the plan (dece run --dry-run) names the parameters set away from their defaults
        assert "saved model (dece_filter: score=onset, ngram=3, trigger=True), then train" in plan_arm(d, filtered).how
        assert Path(d.output_dir).parent == Path(pair.output_dir).parent  # a cell of the same sweep folder
        # only the attack, the filter arm (and so the cell folder) differ
        assert dataclasses.replace(d, attack=pair.attack, seed=pair.seed, output_dir=pair.output_dir,
                                   arms=pair.arms) == pair


def test_the_gpu_configs_plan_offline_with_exact_parameter_counts(monkeypatch, tmp_path):
    from dece.cli.run import _model_lines
    from dece.models.memory import estimate_memory

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # the checkpoint is not on this machine
    cfg = load_config(ROOT / "configs" / "codellama-7b-lyra.toml")
    e = estimate_memory(cfg.model, cfg.train.batch_size, cfg.model.arch_config)
    vocab, h, layers, ffn, r, b = 32016, 4096, 32, 11008, 16, cfg.train.batch_size
    lora = layers * 2 * r * (h + h)  # q_proj and v_proj: A (r x h) and B (h x r) each
    assert e.trainable == lora and e.params == 2 * vocab * h + layers * (4 * h * h + 3 * h * ffn + 2 * h) + h + lora
    s = cfg.model.max_source_length + cfg.model.max_target_length  # decoder-only: source and target tokens
    assert e.activations == int(layers * s * b * h * (34 + 5 * 32 * s / h))  # Korthikanti et al., bf16
    assert e.logits == 2 * b * s * vocab * 2 and e.logits_fused < e.logits / 4
    assert e.weights == e.params * 2 and e.optimizer == 2 * e.gradients == 2 * lora * 2
    lines = _model_lines(cfg)
    assert lines[0].startswith("model: a run here would stop") and "HF_HUB_OFFLINE=1" in lines[0]
    assert any("parameters 6.75B, trainable 8.4M" in line for line in lines)
    t5 = estimate_memory(load_config(ROOT / "configs" / "codet5-base-lyra.toml").model, 16, "configs/models/codet5-base.json")
    assert 220e6 < t5.params == t5.trainable < 225e6  # CodeT5-base, fully fine-tuned


def test_new_config_fields_keep_the_cached_bases(monkeypatch):
    # The pretrained-base cache keys of the shipped recipes, as the bases on disk were built (2026-11-30).
    # A change here rebuilds every user's base (8-30 min each): make it on purpose, never by adding a field.
    monkeypatch.chdir(ROOT)
    default = load_config(ROOT / "src" / "dece" / "configs" / "default.toml")
    lyra = expand_grid(read_config_data(ROOT / "configs" / "paper-lyra.toml"))[0].config
    for cfg, key in ((default, "03487e335c39eed1"), (lyra, "d658b244343518e3")):
        assert pretrain_key(cfg, _digest(cfg.pretrain.rows, cfg.pretrain.seed)) == key


def test_the_bugs2fix_filter_cells_share_the_paper_cells_data_and_base(monkeypatch):
    """DeCE 0.95 + the audit's filter on Bugs2Fix: three seeds in paper-bugs2fix's folder, on the very data,
    attack, base and training recipe of paper-bugs2fix's cells; only the per-row losses are recorded on top."""
    monkeypatch.chdir(ROOT)
    paper = {c.config.seed: c.config for c in expand_grid(read_config_data(ROOT / "configs" / "paper-bugs2fix.toml"))}
    cells = expand_grid(read_config_data(ROOT / "configs" / "robustness-bugs2fix-filter.toml"))
    assert sorted(c.config.seed for c in cells) == [1, 2, 3]
    for c in cells:
        d, p = c.config, paper[c.config.seed]
        assert d.output_dir.startswith("runs/paper-bugs2fix-repair/cells/") and d.dynamics.row_losses
        assert (d.dataset, d.attack, d.pretrain, d.train, d.eval) == (p.dataset, p.attack, p.pretrain, p.train, p.eval)
        dece, filtered = d.arms
        assert (dece.loss, dece.loss_params, dece.defense) == ("dece", {"alpha_base": 0.95}, None)
        assert (filtered.loss, filtered.defense) == ("ce", "dece_filter")
        assert d.source_arm(filtered).name == dece.name


def test_the_bugs2fix_pattern_filter_shares_the_filter_configs_dece_arm(monkeypatch):
    """robustness-bugs2fix-pattern runs the filter config's cells with the pattern score; its DeCE arm has the
    same fingerprint as the filter config's, so a finished arm folder can be copied between the two."""
    from dece.experiments.store import arm_fingerprint

    monkeypatch.chdir(ROOT)
    rank = {c.config.seed: c.config for c in expand_grid(read_config_data(ROOT / "configs" / "robustness-bugs2fix-filter.toml"))}
    cells = expand_grid(read_config_data(ROOT / "configs" / "robustness-bugs2fix-pattern.toml"))
    assert sorted(c.config.seed for c in cells) == [1, 2, 3]
    for c in cells:
        d, r = c.config, rank[c.config.seed]
        (dece, filtered), (rank_dece, _) = d.arms, r.arms
        assert arm_fingerprint(d, dece) == arm_fingerprint(r, rank_dece)
        assert (filtered.loss, filtered.defense, filtered.defense_params["score"]) == ("ce", "dece_filter", "pattern")
        assert d.source_arm(filtered).name == dece.name
