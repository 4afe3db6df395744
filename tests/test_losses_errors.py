"""Bad input gives a clear error naming the argument, position or row."""

import pytest
import torch

from dece.errors import ConfigError
from dece.losses import DeCELoss, dece_loss, get_loss


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"label_smoothing": 1.0}, r"label_smoothing must lie in \[0, 1\)"),
        ({"label_smoothing": -0.1}, r"label_smoothing must lie in \[0, 1\)"),
        ({"alpha_base": 0.0}, r"alpha_base must lie in \(0, 1\]"),
        ({"alpha_base": 1.01}, r"alpha_base must lie in \(0, 1\]"),
        ({"alpha": float("nan")}, r"alpha must lie in"),
        ({"reduction": "avg"}, r"reduction must be one of mean, sum, none"),
        ({"chunk_size": 0}, r"chunk_size must be a whole number of rows >= 1"),
        ({"chunk_size": 1.5}, r"chunk_size must be a whole number"),
    ],
)
def test_out_of_range_hyper_parameters(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DeCELoss(**kwargs)


@pytest.mark.parametrize("epoch", [0, float("inf"), float("nan")])
def test_epoch_below_one_or_not_finite(epoch):
    with pytest.raises(ValueError, match="epoch is a finite number counted from 1"):
        dece_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]), epoch=epoch)


@pytest.mark.parametrize("denominator", [-1, float("nan"), float("inf")])
def test_a_negative_or_non_finite_mean_denominator_is_refused(denominator):
    with pytest.raises(ValueError, match="mean_denominator must be a finite number >= 0"):
        dece_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]), alpha=0.9, mean_denominator=denominator)
    assert float(dece_loss(torch.randn(3, 4), torch.full((3,), -100), alpha=0.9, mean_denominator=0)) == 0


def test_target_out_of_vocab_names_position():
    y = torch.tensor([0, 1, 4, 2])
    with pytest.raises(ValueError, match=r"target id 4 at flat position 2 is outside \[0, 4\)"):
        dece_loss(torch.randn(4, 4), y, alpha=0.9)


def test_minus_100_label_when_ignore_index_is_pad_id():
    y = torch.tensor([0, -100, 1])
    with pytest.raises(ValueError, match="a -100 label with ignore_index set to another value"):
        dece_loss(torch.randn(3, 5), y, alpha=0.9, ignore_index=0)


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match="shape mismatch"):
        dece_loss(torch.randn(3, 5), torch.tensor([0, 1]), alpha=0.9)
    with pytest.raises(ValueError, match="floating-point"):
        dece_loss(torch.ones(3, 5, dtype=torch.long), torch.tensor([0, 1, 2]), alpha=0.9)
    with pytest.raises(ValueError, match="integer tensor"):
        dece_loss(torch.randn(3, 5), torch.tensor([0.0, 1.0, 2.0]), alpha=0.9)


def test_meta_tensors_are_refused_by_name():
    from dece.losses import fused_linear_dece

    meta = lambda *shape, dtype=torch.float32: torch.empty(*shape, dtype=dtype, device="meta")  # noqa: E731
    y = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="logits is on the meta device"):
        dece_loss(meta(3, 5), y, alpha=0.9)
    with pytest.raises(ValueError, match="target is on the meta device"):
        get_loss("ce")(torch.randn(3, 5), meta(3, dtype=torch.long))
    with pytest.raises(ValueError, match="weight is on the meta device"):
        fused_linear_dece(torch.randn(3, 4), meta(5, 4), y, epoch=1)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(ValueError, match="hidden is on the meta device"):
        fused_linear_dece(meta(3, 4), torch.randn(5, 4), y, epoch=1)


def test_non_finite_logits_opt_in_check_names_row():
    z = torch.randn(4, 5)
    z[2, 3] = float("nan")
    y = torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="non-finite logits .* row 2"):
        dece_loss(z, y, alpha=0.9, check_finite=True)
    assert torch.isnan(dece_loss(z, y, alpha=0.9))  # off by default: no extra pass over the logits
    with pytest.raises(ValueError, match="row 2"):
        get_loss("gce", check_finite=True)(z, y)


def test_dece_losses_lists_every_loss_its_parameters_and_backends(capsys):
    from dece.cli import main
    from dece.losses import LOSSES, loss_defaults

    assert main(["losses"]) == 0
    out = capsys.readouterr().out
    for name in LOSSES.names():
        cls = LOSSES.get(name)
        assert cls.summary and f"{name:<16} [{', '.join(cls.backends)}] {cls.summary}" in out
    assert "[auto, torch, triton] DeCE" in out and "alpha_base=0.985  alpha=None  label_smoothing=0.05  authors_compat=False" in out
    assert "alpha_base=0.9  patience=1" in out and "q=0.7\n" in out
    assert "every loss also takes: ignore_index=-100  reduction=mean" in out and "backend=auto" in out
    assert "alpha" not in loss_defaults(LOSSES.get("dece_auto"))  # refused, so not listed


def test_an_option_that_another_would_override_is_refused():
    from dece.errors import ConfigError
    from dece.losses import get_loss

    with pytest.raises(ConfigError, match="alpha_base .* or a fixed alpha, not both"):
        get_loss("dece", alpha=0.9, alpha_base=0.95)
    with pytest.raises(ConfigError, match="alpha_base must be a number, got '0.9'"):
        get_loss("dece", alpha_base="0.9")


def test_a_zero_mean_denominator_with_rows_to_average_is_refused():
    with pytest.raises(ValueError, match="mean_denominator = 0 with rows to average"):
        dece_loss(torch.randn(3, 4), torch.tensor([0, -100, 2]), alpha=0.9, mean_denominator=0)
