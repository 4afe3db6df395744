"""DeCE-auto: the plateau trigger on synthetic validation-loss sequences, the alpha schedule, the loss
against DeCE at the same alpha, and one tiny end-to-end run whose dynamics record the schedule."""

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dece.errors import ConfigError
from dece.experiments import run_experiment
from dece.experiments.dynamics import ValidationLoss, load_dynamics
from dece.experiments.store import read_records
from dece.losses import DeCEAutoLoss, PlateauTrigger, dece_loss, get_loss
from dece.losses.dece_auto import auto_alpha


def fire(seq, **kw):
    t = PlateauTrigger(**kw)
    for e, v in enumerate(seq, start=1):
        t.observe(e, v)
    return t.triggered_at


@pytest.mark.parametrize(
    "seq, kw, expected",
    [
        ([3.0, 2.0, 1.5, 1.2, 1.0], {}, None),  # keeps improving by > 1%
        ([3.0, 2.0, 2.0, 1.0], {}, 3),  # first flat epoch fires with patience 1
        ([3.0, 2.0, 2.1, 1.9, 1.95, 1.96], {"patience": 2}, 6),  # needs two bad epochs in a row
        ([3.0, 2.0, 2.1, 1.5, 1.6, 1.4], {"patience": 2}, None),  # a real improvement resets the count
        ([1.0, 0.995], {"min_delta": 0.01}, 2),  # 0.5% < 1% relative: no improvement
        ([1.0, 0.995], {"min_delta": 0.001}, None),
        ([1.0, 0.995, 0.989], {"patience": 2, "min_delta": 0.01}, None),  # 1.1% from the best counts
        ([5.0, 4.0, 3.0, 2.0], {"max_wait": 3}, 3),
        ([2.0, float("nan"), 1.0], {}, 2),  # a non-finite loss is not an improvement
        ([float("inf"), 2.0, 1.0], {}, 1),  # even at the first epoch
    ],
)
def test_plateau_trigger_on_synthetic_sequences(seq, kw, expected):
    assert fire(seq, **kw) == expected


def reference_trigger(seq, patience, min_delta):
    best, bad = None, 0
    for e, v in enumerate(seq, start=1):
        if best is None or v < best * (1 - min_delta):
            best, bad = v, 0
        else:
            bad += 1
        if bad >= patience:
            return e
    return None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=1, max_size=12), st.integers(1, 3), st.sampled_from([0.0, 0.01, 0.05]))
def test_trigger_matches_reference_and_replays(seq, patience, min_delta):
    t = PlateauTrigger(patience=patience, min_delta=min_delta)
    fired = [t.observe(e, v) for e, v in enumerate(seq, start=1)]
    assert t.triggered_at == reference_trigger(seq, patience, min_delta)
    assert sum(fired) == (t.triggered_at is not None)  # fires once
    again = PlateauTrigger(patience=patience, min_delta=min_delta)
    again.replay(t.history)
    assert (again.triggered_at, again.best, again.bad_epochs) == (t.triggered_at, t.best, t.bad_epochs)


def test_trigger_ignores_repeated_epochs_and_checks_parameters():
    t = PlateauTrigger()
    t.observe(1, 2.0)
    assert t.observe(1, 5.0) is False and t.history == [(1, 2.0)]
    for bad in ({"patience": 0}, {"patience": 1.5}, {"min_delta": 1.0}, {"min_delta": -0.1}, {"max_wait": 0}):
        with pytest.raises(ConfigError):
            PlateauTrigger(**bad)


def test_auto_alpha_schedule():
    assert [auto_alpha(0.9, e, None) for e in (1, 2, 7)] == [1.0, 1.0, 1.0]
    assert [auto_alpha(0.9, e, 3) for e in (1, 3, 4, 6)] == [1.0, 1.0, 0.9, pytest.approx(0.9**3)]
    assert auto_alpha(0.9, 4.5, 3) == pytest.approx(0.9**1.5)  # continuous epochs
    with pytest.raises(ValueError):
        auto_alpha(0.9, 0, None)


def test_loss_equals_dece_at_the_scheduled_alpha_and_copies_share_the_schedule():
    torch.manual_seed(0)
    logits, target = torch.randn(3, 5, 11), torch.randint(0, 11, (3, 5))
    target[0, -2:] = -100
    loss = get_loss("dece_auto", alpha_base=0.8, label_smoothing=0.05)
    assert isinstance(loss, DeCEAutoLoss) and loss.epoch_aware
    torch.testing.assert_close(loss(logits, target, 5), dece_loss(logits, target, alpha=1.0, label_smoothing=0.05))
    trainer_copy = copy.copy(loss)  # what the Trainer integration holds
    loss.observe(1, 2.0)
    loss.observe(2, 2.0)
    assert trainer_copy.triggered_at == 2 and loss.alpha_at(2) == 1.0
    torch.testing.assert_close(trainer_copy(logits, target, 4), dece_loss(logits, target, alpha=0.8**2, label_smoothing=0.05))
    with pytest.raises(ConfigError, match="schedules alpha itself"):
        get_loss("dece_auto", alpha=0.5)
    with pytest.raises(ConfigError, match="valid parameters") as err:
        get_loss("dece_auto", alpah_base=0.5)
    listed = str(err.value).split("valid parameters: ")[1].split(", ")
    assert "alpha" not in listed and "alpha_base" in listed and "patience" in listed
    assert len(listed) == len(set(listed))
    with pytest.raises(ConfigError, match="patience"):
        get_loss("dece_auto", patience=0)


def test_validation_callback_replays_the_schedule_on_resume(tmp_path):
    class State:
        epoch = 0.0
        is_world_process_zero = True

    path = tmp_path / "val_loss.jsonl"
    cb = ValidationLoss.__new__(ValidationLoss)  # no model needed for the resume logic
    cb.path, cb.loss, cb.last = path, DeCEAutoLoss(), None
    for e, v in [(1, 3.0), (2, 3.0), (3, 1.0)]:
        path.open("a").write(f'{{"epoch": {e}, "val_loss": {v}}}\n')
    State.epoch = 2.0  # resumed from the epoch-2 checkpoint: epoch 3's line is ignored
    cb.on_train_begin(None, State, None)
    assert cb.loss.triggered_at == 2 and cb.last == 3.0 and cb.loss.schedule.history == [(1, 3.0), (2, 3.0)]
    assert [r["epoch"] for r in read_records(path)] == [1, 2]  # epoch 3 runs again: written once, not twice
    State.epoch = 0.0  # a fresh start drops old measurements
    cb.on_train_begin(None, State, None)
    assert not path.exists()


@pytest.mark.slow
def test_tiny_run_records_the_schedule(tmp_path):
    from test_experiments_pipeline import tiny_config

    arms = [{"name": "auto", "loss": "dece_auto", "loss_params": {"alpha_base": 0.5, "min_delta": 0.5}}]
    cfg = tiny_config(tmp_path, arms=arms, train={"epochs": 3, "batch_size": 8, "threads": 1},
                      dynamics={"eval_rows": 2, "loss_rows": 4, "val_rows": 6})
    run_experiment(cfg, log=lambda s: None)
    arm = tmp_path / "run" / "arms" / "auto"
    dyn = load_dynamics(arm / "dynamics.jsonl")
    # min_delta 0.5: epoch 2 cannot improve by 50%, so the trigger fires at its end
    assert [r["triggered_at"] for r in dyn] == [None, 2, 2]
    assert [r["alpha"] for r in dyn] == [1.0, 1.0, 0.5]
    assert all(math.isfinite(r["val_loss"]) and r["train_loss"] is not None and r["grad_norm"] is not None for r in dyn)
    vals = read_records(arm / "val_loss.jsonl")
    assert [r["val_loss"] for r in vals] == [r["val_loss"] for r in dyn]
