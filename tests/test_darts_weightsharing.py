"""DARTS and GDAS natively on the DARTS space (issue 20): the paper's search network and derivation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gennas.errors import GennasError
from gennas.space import get_space
from gennas.space.darts import DARTS_PRIMITIVES
from gennas.space.genotype import DARTS_V2
from gennas.weightsharing import WeightSharingConfig, search_cell
from gennas.weightsharing.darts_space import edge_labels


def _alpha_for(genotype) -> np.ndarray:
    """α whose DARTS derivation is ``genotype``: each chosen edge strong on its op, the first listed strongest."""
    alpha = np.zeros((28, len(DARTS_PRIMITIVES)))
    alpha[:, 0] = 1.0  # 'none' dominates every edge: the derivation must ignore it
    labels = edge_labels(4)
    for kind, pairs in (("normal", genotype.normal), ("reduce", genotype.reduce)):
        for slot, (op, index) in enumerate(pairs):
            row = labels.index(f"{kind}:{slot // 2 + 2}<-{index}")
            alpha[row, DARTS_PRIMITIVES.index(op)] = 3.0 if slot % 2 == 0 else 2.0
    return alpha


def test_derivation_follows_darts():
    space = get_space("darts")
    assert space.derive_from_alpha(_alpha_for(DARTS_V2)) == DARTS_V2


@pytest.mark.parametrize("method, order", [("darts", 1), ("gdas", 1), ("darts", 2), ("snas", 1), ("drnas", 1),
                                           ("sdarts-rs", 1)])
def test_weight_sharing_searches_the_darts_space(method, order, digits_splits):
    config = WeightSharingConfig(method=method, order=order, epochs=1, max_steps=2, channels=4, cells_per_stage=5,
                                 device="cpu")
    result = search_cell(digits_splits, get_space("darts"), config)
    space = get_space("darts")
    space.validate(result.cell)
    assert np.array(result.alpha).shape == (28, 8)
    assert set(result.trajectory[0]["alpha_softmax"]) == set(edge_labels(4))
    assert result.cell == space.derive_from_alpha(np.array(result.alpha))


@pytest.mark.parametrize("method", ["pcdarts", "rsps", "setn", "enas", "pdarts", "dartspt", "proxyless"])
def test_methods_with_their_own_supernet_say_so(method, digits_splits):
    config = WeightSharingConfig(method=method, epochs=1, max_steps=1, channels=4, cells_per_stage=5, device="cpu")
    with pytest.raises(GennasError, match="cell spaces only"):
        search_cell(digits_splits, get_space("darts"), config)


def test_gdas_runs_one_op_per_edge():
    """A one-path forward computes only the chosen ops: the output does not depend on the others' weights."""
    from gennas.nn.darts_network import DartsNetworkConfig
    from gennas.weightsharing.darts_space import DartsSearchNetwork

    torch.manual_seed(0)
    config = DartsNetworkConfig(channels=4, layers=3, in_channels=1, image_size=8)
    net = DartsSearchNetwork(get_space("darts"), config, (0.5,), (0.25,)).eval()
    x = torch.rand(2, 1, 8, 8)
    chosen = [4] * 28  # sep_conv_3x3 everywhere
    weights = torch.zeros(28, 8).scatter_(1, torch.tensor(chosen).view(-1, 1), 1.0)
    before = net(x, weights, chosen)
    with torch.no_grad():
        for cell in net.cells:
            for mixed in cell.mixed:
                for p in mixed.candidates["dil_conv_5x5"].parameters():
                    p.add_(1.0)
    assert torch.equal(before, net(x, weights, chosen))
