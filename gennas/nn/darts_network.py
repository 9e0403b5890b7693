"""DARTS' CIFAR network (``NetworkCIFAR`` of the paper's ``cnn/model.py``) around any genotype.

stem (3x3 conv to 3C + BN) -> ``layers`` cells; the cells at ``layers // 3`` and
``2 * layers // 3`` are reduction cells (channels doubled, side halved, stride 2 on the
edges leaving the two cell inputs), the others normal cells. Each cell reads the outputs
of the two cells before it, preprocessed to C channels by a 1x1 ReLU-conv-BN (or a
factorized reduction when the cell before was a reduction), and concatenates its
intermediate nodes. Global average pooling and a linear classifier close it; an
auxiliary head after the second reduction and drop-path are optional, as in the paper.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from gennas.errors import GennasError
from gennas.nn.darts_ops import FactorizedReduce, ReLUConvBN, drop_path, make_darts_op
from gennas.space.genotype import Genotype, Pair

#: The scaled-down skeleton gennas trains on a dataset (8x8 digits: a few seconds an epoch on one core).
TRAINING_CHANNELS = 8
TRAINING_LAYERS = 5
STEM_MULTIPLIER = 3


@dataclass(frozen=True)
class DartsNetworkConfig:
    """DARTS skeleton settings; the defaults are the paper's CIFAR-10 evaluation network.

    Attributes:
        channels: C of the first cells (the stem has 3C).
        layers: number of cells, two of them reduction cells.
        in_channels, image_size, num_classes: the data (square images).
        auxiliary: build the auxiliary head (training-time only; needs an 8x8 map after the second reduction).
        drop_path_prob: drop-path probability while training (0 disables it).
    """

    channels: int = 36
    layers: int = 20
    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10
    auxiliary: bool = False
    drop_path_prob: float = 0.0

    def __post_init__(self) -> None:
        for name in ("channels", "layers", "in_channels", "image_size", "num_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GennasError(f"DARTS network {name} must be a positive integer, got {value!r}")
        if self.num_classes < 2:
            raise GennasError("DARTS network num_classes must be at least 2")
        if self.image_size % 4:
            raise GennasError(f"the DARTS network halves the input side twice with factorized reductions, so the "
                              f"image size must be a multiple of 4, got {self.image_size}")
        if not 0.0 <= self.drop_path_prob < 1.0:
            raise GennasError(f"drop_path_prob must be in [0, 1), got {self.drop_path_prob}")
        if self.auxiliary and self.reduction_sides()[-1] != 8:
            raise GennasError("the DARTS auxiliary head assumes an 8x8 map after the second reduction (a 32x32 "
                              f"input); this skeleton has {self.reduction_sides()[-1]}x{self.reduction_sides()[-1]}")

    # ------------------------------------------------------------------ layout
    @property
    def reductions(self) -> tuple[int, ...]:
        """Indices of the reduction cells (one index when ``layers`` < 3 puts both at the same cell)."""
        return tuple(sorted({self.layers // 3, 2 * self.layers // 3}))

    @property
    def auxiliary_after(self) -> int:
        """The cell whose output feeds the auxiliary head."""
        return 2 * self.layers // 3

    def reduction_sides(self) -> list[int]:
        """The side after each reduction."""
        return [self.image_size >> (i + 1) for i in range(len(self.reductions))]

    def to_dict(self) -> dict:
        return {"kind": "darts", **asdict(self)}

    def describe(self) -> str:
        """One line naming the skeleton, printed beside every FLOPs figure."""
        extras = (", auxiliary head" if self.auxiliary else "") + (
            f", drop-path {self.drop_path_prob}" if self.drop_path_prob else "")
        return (f"DARTS C={self.channels}, {self.layers} layers (reductions at {', '.join(map(str, self.reductions))}), "
                f"input {self.in_channels}x{self.image_size}x{self.image_size}, {self.num_classes} classes{extras}")

    @classmethod
    def for_data(cls, data, channels: int | None = None, layers: int | None = None) -> "DartsNetworkConfig":
        """The skeleton every command that trains on a dataset uses for DARTS genotypes.

        Args:
            data: anything with ``in_channels``, ``image_size`` and ``num_classes``.
            channels: C (default :data:`TRAINING_CHANNELS`, 8).
            layers: cells (default :data:`TRAINING_LAYERS`, 5: normal, reduce, normal, reduce, normal).
        """
        return cls(channels=channels or TRAINING_CHANNELS, layers=layers or TRAINING_LAYERS,
                   in_channels=data.in_channels, image_size=data.image_size, num_classes=data.num_classes)


def cell_plan(config: DartsNetworkConfig, multipliers: tuple[int, int] = (4, 4)
              ) -> list[tuple[int, int, int, bool, bool]]:
    """Per cell ``(C_prev_prev, C_prev, C, reduction, reduction_prev)``, as NetworkCIFAR builds them.

    Args:
        config: the skeleton.
        multipliers: how many nodes the normal and the reduction cell concatenate (4 in the space).
    """
    c_pp = c_p = STEM_MULTIPLIER * config.channels
    c, reduction_prev, plan = config.channels, False, []
    for i in range(config.layers):
        reduction = i in config.reductions
        if reduction:
            c *= 2
        plan.append((c_pp, c_p, c, reduction, reduction_prev))
        c_pp, c_p, reduction_prev = c_p, multipliers[reduction] * c, reduction
    return plan


def multipliers(genotype: Genotype) -> tuple[int, int]:
    """How many nodes the normal and the reduction cell of ``genotype`` concatenate."""
    return len(genotype.normal_concat), len(genotype.reduce_concat)


def last_reads(pairs: tuple[Pair, ...], concat: tuple[int, ...]) -> list[int]:
    """Per state (2 inputs + nodes), the last node step reading it; concatenated nodes live to the end."""
    steps = len(pairs) // 2
    last = [-1] * (2 + steps)
    for slot, (_, index) in enumerate(pairs):
        last[index] = max(last[index], slot // 2)
    for i in concat:
        last[i] = steps
    return last


class DartsCell(nn.Module):
    """One cell of a genotype: two preprocessed inputs, 4 nodes of two (op, input) pairs, concat."""

    def __init__(self, pairs: tuple[Pair, ...], concat: tuple[int, ...], c_pp: int, c_p: int, c: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self._ops = nn.ModuleList(make_darts_op(op, c, 2 if reduction and index < 2 else 1) for op, index in pairs)
        self.indices = [index for _, index in pairs]
        self.concat = tuple(concat)
        self.last = last_reads(pairs, self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        """Shapes: (B, C_pp, H', W'), (B, C_p, H, W) -> (B, 4C, H or H/2, ...)."""
        return run_darts_cell(self, list(self._ops), s0, s1, drop_prob)


def run_darts_cell(cell: nn.Module, ops: list[nn.Module], s0: torch.Tensor, s1: torch.Tensor,
                   drop_prob: float = 0.0) -> torch.Tensor:
    """Evaluate a DARTS cell: ``cell`` holds ``preprocess0/1``, ``indices``, ``concat`` and ``last``; ``ops[slot]``
    is the module of each (op, input) pair.

    Shared by standalone cells and supernet cells, so a subnet computes exactly what the
    standalone network of its genotype computes. A state is released once no later node
    or the concat reads it: gennas.metrics.darts_memory replays this order to count peak
    memory, and a test checks the two agree byte for byte.
    """
    states: list[torch.Tensor | None] = [cell.preprocess0(s0), cell.preprocess1(s1)]
    del s0, s1
    for k in range(len(ops) // 2):
        total: torch.Tensor | None = None
        for slot in (2 * k, 2 * k + 1):
            op = ops[slot]
            h = op(states[cell.indices[slot]])
            if cell.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                h = drop_path(h, drop_prob)
            total = h if total is None else total + h
            del h
        for slot in (2 * k, 2 * k + 1):
            if cell.last[cell.indices[slot]] == k:
                states[cell.indices[slot]] = None
        states.append(total)
        del total
    return torch.cat([states[i] for i in cell.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier on the 8x8 map after the second reduction (training only)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsNetwork(nn.Module):
    """A classifier from a :class:`~gennas.space.genotype.Genotype` on the DARTS CIFAR skeleton.

    ``forward`` returns the logits; while training with an auxiliary head, that head's
    logits are left in :attr:`aux_logits` for a trainer that adds DARTS' auxiliary loss.
    """

    def __init__(self, genotype: Genotype, config: DartsNetworkConfig = DartsNetworkConfig(),
                 make_cell: Callable[[tuple[int, int, int, bool, bool]], nn.Module] | None = None) -> None:
        """``make_cell(plan_row)`` builds each cell slot (default: this genotype's :class:`DartsCell`).

        The supernet passes its switchable cells here, so every parameter name outside the
        cells' ops is the standalone network's.
        """
        super().__init__()
        self.genotype, self.config = genotype, config
        self.drop_path_prob = config.drop_path_prob
        c_stem = STEM_MULTIPLIER * config.channels
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem))
        self.cells = nn.ModuleList()
        plan = cell_plan(config, multipliers(genotype))
        for row in plan:
            pairs, concat = genotype.cell(row[3])
            self.cells.append(make_cell(row) if make_cell else DartsCell(pairs, concat, *row))
        c_out = [plan[i + 1][1] for i in range(len(plan) - 1)] + [multipliers(genotype)[plan[-1][3]] * plan[-1][2]]
        self.auxiliary_head = (AuxiliaryHead(c_out[config.auxiliary_after], config.num_classes)
                               if config.auxiliary else None)
        self.aux_logits: torch.Tensor | None = None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_out[-1], config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shapes: (B, in_channels, S, S) -> (B, num_classes)."""
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.config.auxiliary_after and self.auxiliary_head is not None and self.training:
                self.aux_logits = self.auxiliary_head(s1)
        del s0
        out = self.global_pooling(s1)
        del s1
        return self.classifier(torch.flatten(out, 1))


def inference_params(model: nn.Module) -> int:
    """Parameters of the network used at test time: the auxiliary head excluded, as DARTS counts them."""
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith("auxiliary_head"))
