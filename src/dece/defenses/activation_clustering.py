"""Activation clustering (Chen et al., SafeAI@AAAI 2019): the representations are reduced to a few
dimensions and split into two clusters; a markedly small cluster is taken to be the poisoned rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from dece.data.records import Example
from dece.defenses.base import DataContext, RepresentationDefense, Selection, registered, row_ids


def pca(x: torch.Tensor, components: int) -> torch.Tensor:
    """``x`` centred and projected on its top ``components`` principal directions."""
    centred = x.double() - x.double().mean(0, keepdim=True)
    u, s, _ = torch.linalg.svd(centred, full_matrices=False)
    k = min(components, s.numel())
    return (u[:, :k] * s[:k]).float()


def kmeans(x: torch.Tensor, k: int, *, n_init: int = 10, iters: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ seeding, best of ``n_init`` restarts by inertia; deterministic for a
    ``seed``. Returns ``(labels [n], centres [k, d])``."""
    x = x.double()
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    best: tuple[float, torch.Tensor, torch.Tensor] | None = None
    for _ in range(n_init):
        centres = x[torch.randint(n, (1,), generator=gen)]
        while centres.shape[0] < k:
            d2 = torch.cdist(x, centres).pow(2).min(1).values
            probs = d2 / d2.sum() if d2.sum() > 0 else torch.full((n,), 1.0 / n, dtype=x.dtype)
            centres = torch.cat([centres, x[torch.multinomial(probs, 1, generator=gen)]])
        labels = torch.cdist(x, centres).argmin(1)
        for _ in range(iters):
            for j in range(k):
                if (labels == j).any():
                    centres[j] = x[labels == j].mean(0)
            new = torch.cdist(x, centres).argmin(1)
            if torch.equal(new, labels):
                break
            labels = new
        inertia = (x - centres[labels]).pow(2).sum().item()
        if best is None or inertia < best[0] - 1e-12:
            best = (inertia, labels.clone(), centres.clone())
    assert best is not None
    return best[1], best[2].float()


@registered
@dataclass
class ActivationClustering(RepresentationDefense):
    """Project the reference-model representations of the training rows on their top ``components``
    principal directions (the original uses ICA; PCA keeps it dependency-free), split them into two
    clusters with k-means, and remove the smaller cluster when it holds at most ``max_share`` of the
    rows (the *relative size* criterion: poison is a minority); otherwise remove nothing. All rows form
    one population, since generation has no classes.

    Parameters:
        components: dimensions kept before clustering (10 in the original). >= 1.
        max_share: the largest share of rows the smaller cluster may hold to be removed (0.35 in the
            original). In (0, 0.5].
        n_init: k-means restarts (the best by inertia is kept). >= 1.
        seed: the k-means seed.
        representation: ``"source"`` (default: mean-pooled encoder states) or ``"first_step"`` (the
            state the first output token is predicted from); see :class:`~dece.defenses.DataDefense`.
    """

    name = "activation_clustering"
    summary = "2-means on PCA-reduced representations; remove the smaller cluster if it is small enough"

    components: int = 10
    max_share: float = 0.35
    n_init: int = 10
    seed: int = 0

    def check(self) -> None:
        if self.components < 1:
            raise self.fail("components", "must be >= 1")
        if not 0 < self.max_share <= 0.5:
            raise self.fail("max_share", "must lie in (0, 0.5]")
        if self.n_init < 1:
            raise self.fail("n_init", "must be >= 1")

    def select(self, rows: Sequence[Example], context: DataContext) -> Selection:
        ids = row_ids(rows)
        if len(rows) < 3:
            return Selection(ids=(), details={"reason": "too few rows to cluster"})
        reduced = pca(context.represent(rows), self.components)
        labels, centres = kmeans(reduced, 2, n_init=self.n_init, seed=self.seed)
        sizes = [int((labels == j).sum()) for j in range(2)]
        small = 0 if sizes[0] < sizes[1] else 1
        share = sizes[small] / len(rows)
        flagged = share <= self.max_share
        details = {"cluster_sizes": sorted(sizes), "small_share": share, "flagged": flagged}
        if not flagged:
            return Selection(ids=(), details=details)
        # suspicion of a removed row: how far it lies from the large (presumed clean) cluster's centre
        far = (reduced - centres[1 - small]).norm(dim=1)
        chosen = [i for i in range(len(rows)) if labels[i] == small]
        return Selection(ids=tuple(ids[i] for i in chosen), scores={ids[i]: float(far[i]) for i in chosen},
                         details=details)
