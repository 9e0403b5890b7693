"""The DARTS space (issue 20): published genotypes, the exact network, costs, validity by construction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gennas.cli import main
from gennas.errors import GennasError
from gennas.metrics.darts_costs import darts_costs
from gennas.metrics.flops import count_flops
from gennas.metrics.memory import measure_peak_memory
from gennas.nn.darts_network import DartsNetwork, DartsNetworkConfig, inference_params
from gennas.space import get_space
from gennas.space.darts import DartsSpace
from gennas.space.genotype import DARTS_V1, DARTS_V2, Genotype

#: cnn/genotypes.py of quark0/darts, verbatim.
PUBLISHED = {
    "DARTS_V1": "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
                "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
                "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
                "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
                "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",
    "DARTS_V2": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
                "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
                "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
                "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
}
#: The published code's count_parameters_in_MB at C=36, 20 layers, 10 classes (auxiliary head excluded).
PUBLISHED_PARAMS = {"DARTS_V1": 3_169_414, "DARTS_V2": 3_349_342}
SMALL = DartsNetworkConfig(channels=4, layers=5, in_channels=1, image_size=8)


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_genotypes_parse_print_back_and_count(name):
    space = get_space("darts")
    genotype = space.parse(PUBLISHED[name])
    assert genotype.to_published() == PUBLISHED[name]
    assert space.parse(genotype.to_string()) == genotype  # the compact form round-trips too
    assert space.parse(name) == genotype
    net = DartsNetwork(genotype)  # built, never run: C=36, 20 layers
    assert inference_params(net) == PUBLISHED_PARAMS[name]
    assert round(space.costs(genotype)["params"] * 1e6) == PUBLISHED_PARAMS[name]


def test_search_output_concat_range_parses():
    """DARTS' search code prints concats as range(2, 6)."""
    text = PUBLISHED["DARTS_V2"].replace("[2, 3, 4, 5]", "range(2, 6)")
    assert Genotype.from_string(text) == DARTS_V2


@pytest.mark.parametrize("config", [SMALL, DartsNetworkConfig(channels=6, layers=4, image_size=16),
                                    DartsNetworkConfig(channels=4, layers=7, image_size=32)],
                         ids=["digits-like", "16px-4layers", "32px-7layers"])
def test_closed_form_costs_equal_a_real_pass(config):
    """FLOPs (forward hooks), params and peak memory (tracked forward) of real networks, to the byte."""
    rng = np.random.default_rng(3)
    shape = (config.in_channels, config.image_size, config.image_size)
    for genotype in [DARTS_V1, DARTS_V2] + DartsSpace().sample(rng, 3):
        net = DartsNetwork(genotype, config)
        closed = darts_costs(genotype, config)
        assert closed["flops"] == pytest.approx(count_flops(net, shape), rel=1e-12)
        assert round(closed["params"] * 1e6) == inference_params(net)
        assert closed["memory_bytes"] == measure_peak_memory(net, shape)


def test_fvcore_counts_the_same_convolutions():
    """An independent count of the traced graph: conv + linear + pooling windows."""
    fvcore = pytest.importorskip("fvcore.nn")
    from fvcore.nn.jit_handles import get_shape
    import math

    def pool(inputs, outputs) -> int:
        return math.prod(get_shape(outputs[0])) * 9  # every DARTS pool has a 3x3 window

    net = DartsNetwork(DARTS_V1, SMALL).eval()
    analysis = fvcore.FlopCountAnalysis(net, torch.zeros(1, 1, 8, 8))
    for op in ("aten::avg_pool2d", "aten::max_pool2d"):
        analysis.set_op_handle(op, pool)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    total = sum(by_op.get(k, 0) for k in ("conv", "linear", "avg_pool2d", "max_pool2d")) + SMALL.num_classes
    assert total / 1e6 == pytest.approx(darts_costs(DARTS_V1, SMALL)["flops"], rel=1e-12)


def test_auxiliary_head_and_drop_path_train_only():
    config = DartsNetworkConfig(channels=4, layers=5, auxiliary=True, drop_path_prob=0.2)
    net = DartsNetwork(DARTS_V2, config)
    assert inference_params(net) == round(darts_costs(DARTS_V2, config)["params"] * 1e6)
    assert sum(p.numel() for p in net.parameters()) > inference_params(net)
    x = torch.randn(2, 3, 32, 32)
    net.train()
    assert net(x).shape == (2, 10) and net.aux_logits.shape == (2, 10)
    net.eval()
    torch.manual_seed(0)
    a = net(x)
    torch.manual_seed(1)
    assert torch.equal(a, net(x))  # no drop-path at inference
    with pytest.raises(GennasError, match="auxiliary head assumes an 8x8"):
        DartsNetworkConfig(image_size=8, in_channels=1, auxiliary=True, layers=5)


def test_samples_mutations_and_decodes_are_valid_and_canonical():
    space = DartsSpace()
    rng = np.random.default_rng(0)
    assert f"{space.size:.3g}" == "1.08e+18"  # the DARTS paper's ~10^18
    for genotype in space.sample(rng, 50):
        space.validate(genotype)
        assert genotype == genotype.canonical_genotype
        assert space.decode(space.encode(genotype)) == genotype
        assert space.from_ordinal(space.ordinal(genotype)) == genotype
        assert space.one_hot(genotype).shape == (space.one_hot_size,)
        assert space.one_hot(genotype).sum() == 16
        neighbours = space.neighbours(genotype)
        assert len(neighbours) == 2 * (8 * 6 + 2 * (0 + 1 + 2 + 3))  # 6 other ops per input, k rewirings per input
        assert all(space.contains(n) and n != genotype for n in neighbours)
        space.validate(space.mutate(genotype, rng, 3))
    cards = [len(c) for c in space.choices]
    for _ in range(200):  # any in-range vector decodes to a valid genotype
        space.validate(space.decode([int(rng.integers(c)) for c in cards]))


def test_canonical_form_sorts_a_nodes_inputs():
    space = DartsSpace()
    assert DARTS_V1 != DARTS_V1.canonical_genotype
    assert DARTS_V1.canonical == DARTS_V1.canonical_genotype.to_string()
    assert (space.encode(DARTS_V1) == space.encode(DARTS_V1.canonical_genotype)).all()
    assert space.costs(DARTS_V1, SMALL) == space.costs(DARTS_V1.canonical_genotype, SMALL)


@pytest.mark.parametrize("text, phrase", [
    ("", "empty genotype string"),
    ("|nor_conv_3x3~0|+|none~0|skip_connect~1|", "the compact form is NORMAL/REDUCE"),
    ("Genotype(normal=[('sep_conv_3x3', 0)]", "not valid Genotype(...) notation"),
    ("Genotype(normal=[], normal_concat=[2], reduce=[])", "missing reduce_concat"),
    ("Genotype(normal=[('sep_conv_3x3', 'a')], normal_concat=[2], reduce=[], reduce_concat=[2])", "(op, input) pairs"),
    ("Genotype(normal=x, normal_concat=[2], reduce=[], reduce_concat=[2])", "is not a literal list"),
    (PUBLISHED["DARTS_V2"].replace("'dil_conv_3x3', 2", "'conv_7x1_1x7', 2"), "unknown op 'conv_7x1_1x7'"),
    (PUBLISHED["DARTS_V2"].replace("'dil_conv_3x3', 2", "'none', 2"), "never keeps 'none'"),
    (PUBLISHED["DARTS_V2"].replace("('sep_conv_3x3', 1), ('skip_connect', 0)", "('sep_conv_3x3', 1), "
                                   "('skip_connect', 1)"), "takes input 1 twice"),
    (PUBLISHED["DARTS_V2"].replace("'dil_conv_3x3', 2", "'dil_conv_3x3', 5"), "only 0..4 exist before it"),
    (PUBLISHED["DARTS_V2"].replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3]"), "concatenates [2, 3]"),
    ("sep_conv_3x3~0,sep_conv_3x3~1/max_pool_3x3~0", "needs 8 (op, input) pairs"),
    ("sep_conv_3x3~0,sep_conv_3x3/x~0", "must be 'op~input'"),
])
def test_bad_genotypes_give_one_clear_error(text, phrase, capsys):
    with pytest.raises(GennasError, match=None) as info:
        get_space("darts").parse(text)
    assert phrase in str(info.value)
    assert main(["cost", "darts", text or " ", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_cost_command_on_the_paper_network(capsys):
    assert main(["cost", "darts", PUBLISHED["DARTS_V2"], "--channels", "36", "--layers", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert round(out["params"] * 1e6) == 3_349_342 and out["network"]["layers"] == 20
    assert main(["cost", "darts", "DARTS_V1", "--dataset", "digits", "--channels", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {**out, "flops": pytest.approx(darts_costs(DARTS_V1, SMALL)["flops"])}
    assert main(["cost", "darts", "DARTS_V1", "--cells-per-stage", "2"]) == 2
    assert "--cells-per-stage does not apply" in capsys.readouterr().err
