"""The DARTS supernet (issue 20): a subnet's output equals its standalone network's, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gennas.errors import GennasError
from gennas.metrics.darts_costs import darts_costs
from gennas.nn.darts_network import DartsNetwork, DartsNetworkConfig, inference_params
from gennas.space import get_space
from gennas.space.genotype import DARTS_V1, DARTS_V2
from gennas.supernet.darts_model import DartsSupernet

SKELETON = DartsNetworkConfig(channels=4, layers=5, in_channels=1, image_size=8)


@pytest.fixture(scope="module")
def trained():
    """A supernet whose weights and BN statistics moved: a few SGD steps over random subnets."""
    space = get_space("darts")
    torch.manual_seed(0)
    supernet = DartsSupernet(space, SKELETON)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.05)
    rng = np.random.default_rng(0)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(10, (16,))
    supernet.train()
    for _ in range(4):
        supernet.activate(space.sample(rng))
        loss = torch.nn.functional.cross_entropy(supernet(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return space, supernet


def test_subnets_equal_their_standalone_networks(trained):
    space, supernet = trained
    rng = np.random.default_rng(1)
    x = torch.rand(5, 1, 8, 8)
    genotypes = [DARTS_V1, DARTS_V2] + space.sample(rng, 6)
    for genotype in genotypes:
        standalone = supernet.extract(genotype)
        with supernet.subnet(genotype):
            supernet.eval()
            standalone.eval()
            assert torch.equal(supernet(x), standalone(x))
            supernet.train()
            standalone.train()  # batch statistics too (BN in training mode, no drop-path)
            assert torch.equal(supernet(x), standalone(x))
        assert inference_params(standalone) == round(darts_costs(genotype, SKELETON)["params"] * 1e6)


def test_load_standalone_is_the_inverse_of_extract(trained):
    space, supernet = trained
    torch.manual_seed(3)
    net = DartsNetwork(DARTS_V2, SKELETON)
    copy = DartsSupernet(space, SKELETON)
    copy.load_standalone(net)
    back = copy.extract(DARTS_V2)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), back.state_dict().values()))


def test_disabled_blocks_are_not_built_and_refuse_their_genotypes():
    space = get_space("darts")
    disabled = [("normal", 0, 0, "sep_conv_3x3"), ("reduce", 3, 4, "max_pool_3x3")]
    supernet = DartsSupernet(space, SKELETON, disabled=disabled)
    assert "sep_conv_3x3" not in supernet.cells[0].blocks["0_0"]
    with pytest.raises(GennasError, match="needs disabled supernet block"):
        supernet.activate(DARTS_V2)  # its normal node 0 is sep_conv_3x3 on input 0
    with pytest.raises(GennasError, match="needs disabled supernet block"):
        supernet.activate(DARTS_V1)  # the same block, listed second in its node
    allowed = [g for g in space.sample(np.random.default_rng(2), 20)
               if not set(supernet.blocks_of(g)) & set(disabled)]
    x = torch.rand(2, 1, 8, 8)
    for genotype in allowed[:3]:
        with supernet.subnet(genotype):
            assert torch.equal(supernet.eval()(x), supernet.extract(genotype).eval()(x))
    with pytest.raises(GennasError, match="unknown supernet blocks"):
        DartsSupernet(space, SKELETON, disabled=[("normal", 0, 5, "sep_conv_3x3")])


def test_supernet_of_generated_genotypes_holds_their_blocks_only():
    """The supernet of a few genotypes (as generated ones would be merged): their blocks, nothing else."""
    space = get_space("darts")
    genotypes = space.sample(np.random.default_rng(7), 6)
    torch.manual_seed(0)
    supernet = DartsSupernet.of_genotypes(space, genotypes, SKELETON)
    used = {b for g in genotypes for b in supernet.blocks_of(g)}
    built = {(cell.kind, int(edge.split("_")[0]), int(edge.split("_")[1]), op)
             for cell in supernet.cells for edge, ops in cell.blocks.items() for op in ops}
    assert built == used
    x = torch.rand(3, 1, 8, 8)
    for genotype in genotypes:
        with supernet.subnet(genotype):
            assert torch.equal(supernet.eval()(x), supernet.extract(genotype).eval()(x))
    outsider = next(g for g in space.sample(np.random.default_rng(8), 50) if set(supernet.blocks_of(g)) - used)
    with pytest.raises(GennasError, match="needs disabled supernet block"):
        supernet.activate(outsider)
