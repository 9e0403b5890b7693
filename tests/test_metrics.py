import numpy as np
import pytest
import torch

from gennas.errors import GennasError
from gennas.metrics import (
    CostTable,
    Metric,
    analytic_flops_params,
    analytic_peak_memory,
    cell_costs,
    count_params,
    get_metric,
    measure_latency,
    measure_peak_memory,
    measured_costs,
    register_metric,
)
from gennas.nn import NetworkConfig, build_network
from gennas.space import Cell, get_space, nb201_space

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def test_reference_params_of_the_benchmark():
    for arch, params in ((ALL_CONV, 1.531546), (RESNET, 0.559386)):
        net = build_network(Cell.from_string(arch))
        assert round(count_params(net), 6) == params
        assert analytic_flops_params(Cell.from_string(arch))[1] == pytest.approx(params, abs=1e-9)


def test_network_forward_shapes_on_other_inputs():
    cell = Cell.from_string(RESNET)
    for cfg in (NetworkConfig(channels=8, cells_per_stage=1, in_channels=1, image_size=8, num_classes=10),
                NetworkConfig(channels=4, cells_per_stage=2, in_channels=3, image_size=15, num_classes=7)):
        net = build_network(cell, cfg)
        out = net(torch.randn(2, cfg.in_channels, cfg.image_size, cfg.image_size))
        assert out.shape == (2, cfg.num_classes)


@pytest.mark.parametrize("space_name, cfg", [
    ("nb201", NetworkConfig()),
    ("dag6", NetworkConfig(channels=8, cells_per_stage=2, in_channels=1, image_size=9, num_classes=5)),
])
def test_closed_forms_equal_real_network_measurements(space_name, cfg, rng):
    """FLOPs by hooks and peak memory from a real forward equal the analytical counts exactly."""
    space = get_space(space_name)
    cells = space.sample(rng, 6) + [Cell(("none",) * space.num_edges)] * (space_name == "nb201")
    for cell in cells:
        assert measured_costs(cell, cfg) == pytest.approx(cell_costs(cell, cfg), rel=1e-12)


def test_memory_counts_live_activations_not_all_activations():
    cell = Cell.from_string(ALL_CONV)
    cfg = NetworkConfig(channels=4, cells_per_stage=1, in_channels=1, image_size=8)
    net = build_network(cell, cfg)
    peak = measure_peak_memory(net, (1, 8, 8))
    state = sum(t.numel() * 4 for t in net.parameters()) + sum(t.numel() * t.element_size() for t in net.buffers())
    activations = peak - state
    # at least the input, a node, and a conv's relu/conv/bn temporaries; far less than every activation summed
    assert 4 * (64 + 3 * 4 * 64) <= activations < 4 * 4 * 64 * 40
    assert analytic_peak_memory(cell, cfg) == peak


def test_flops_range_of_the_benchmark():
    table = CostTable.load_or_build(nb201_space())
    # Pooling counts as in the NAS-Bench-201 API (issue 21): the emptiest and the all-conv cell
    # both carry the reductions' 2x2 shortcut pooling, 0.024576 M above the conv + linear count.
    assert table.values["flops"].min() == pytest.approx(7.807626)
    assert table.values["flops"].max() == pytest.approx(220.144266)
    assert table.values["params"].max() == pytest.approx(1.531546)
    cell = Cell.from_string(RESNET)
    assert table.lookup(cell) == pytest.approx(cell_costs(cell))
    again = CostTable.load_or_build(nb201_space())  # from the cache
    assert np.array_equal(again.values["memory_bytes"], table.values["memory_bytes"])


def test_corrupt_cost_cache_is_rebuilt(tmp_path):
    space = get_space("dag3")
    path = CostTable.cache_path(space, NetworkConfig(), tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    table = CostTable.load_or_build(space, root=tmp_path)
    assert len(table.values["flops"]) == space.size


def test_latency_is_positive_median():
    net = build_network(Cell.from_string(RESNET), NetworkConfig(channels=4, cells_per_stage=1, image_size=8))
    assert measure_latency(net, (3, 8, 8), repeats=3, warmup=1) > 0


def test_metric_registry():
    assert get_metric("flops").direction == "min" and get_metric("robustness").name == "pgd_accuracy"
    assert get_metric("accuracy").better(95, 94) and get_metric("flops").better(10, 20)
    with pytest.raises(GennasError, match="unknown metric 'zzz'"):
        get_metric("zzz")
    custom = register_metric(Metric("energy_mj", "min", "mJ", "hardware"))
    assert get_metric("energy_mj") is custom
    with pytest.raises(GennasError, match="already registered"):
        register_metric(Metric("energy_mj", "max", "mJ", "hardware"))
    # a checkpoint saved under an older wording of a metric loads; the registered wording stays
    assert register_metric(Metric("energy_mj", "min", "mJ", "hardware", "older words")) is custom
    with pytest.raises(GennasError, match="direction"):
        Metric("x", "up", "", "cost")


class _Disturbed(torch.nn.Module):
    """A forward that another process slows down for its first ``slow`` calls (a busy machine)."""

    def __init__(self, slow: int) -> None:
        super().__init__()
        self.calls, self.slow = 0, slow
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x):
        import time

        self.calls += 1
        if self.calls <= self.slow:
            time.sleep(0.02)
        return self.linear(x.flatten(1))


def test_a_latency_reading_keeps_the_least_disturbed_round_and_reports_its_spread():
    from gennas.metrics.latency import read_latency

    model = _Disturbed(slow=3 + 10)  # the warm-up and the first round are slowed down
    reading = read_latency(model, (4,), repeats=10, warmup=3, rounds=3)
    assert reading.median_ms < 5 and reading.spread_ms >= 0 and model.calls == 3 + 30


def test_latency_outliers_are_the_readings_off_the_flops_trend():
    from gennas.metrics.latency import latency_outliers

    flops = np.linspace(1, 10, 12)
    latency = 0.2 * flops ** 0.9
    disturbed = latency.copy()
    disturbed[4] *= 40  # 590 ms where its peers take 15
    assert latency_outliers(latency, flops) == []
    assert latency_outliers(disturbed, flops) == [4]
