"""The NAS-Bench-201 macro skeleton around any cell of the family.

stem (3x3 conv + BN) -> N cells at C -> reduction -> N cells at 2C -> reduction ->
N cells at 4C -> BN + ReLU -> global average pool -> linear classifier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from gennas.errors import GennasError
from gennas.nn.cell import CellModule
from gennas.nn.ops import ResidualReduction
from gennas.space.cell import Cell


#: The skeleton of networks trained on a dataset (see :meth:`NetworkConfig.for_data`).
TRAINING_CHANNELS = 16
TRAINING_CELLS_PER_STAGE = 2


@dataclass(frozen=True)
class NetworkConfig:
    """Macro-skeleton settings. Defaults are NAS-Bench-201 on CIFAR-10 (C=16, N=5, 3x32x32, 10 classes)."""

    channels: int = 16
    cells_per_stage: int = 5
    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise GennasError(f"NetworkConfig.{name} must be a positive integer, got {value!r}")
        if self.num_classes < 2:
            raise GennasError("NetworkConfig.num_classes must be at least 2")

    @property
    def stage_channels(self) -> tuple[int, int, int]:
        return (self.channels, 2 * self.channels, 4 * self.channels)

    @property
    def stage_sizes(self) -> tuple[int, int, int]:
        """Spatial side of each stage: each reduction halves it (rounding up, as conv stride 2 does)."""
        s1 = self.image_size
        s2 = (s1 - 1) // 2 + 1
        s3 = (s2 - 1) // 2 + 1
        return (s1, s2, s3)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line naming the skeleton, printed beside every FLOPs figure so two figures can be compared."""
        return (f"C={self.channels}, N={self.cells_per_stage} cells/stage, input "
                f"{self.in_channels}x{self.image_size}x{self.image_size}, {self.num_classes} classes")

    @classmethod
    def for_data(cls, data, channels: int = TRAINING_CHANNELS,
                 cells_per_stage: int = TRAINING_CELLS_PER_STAGE) -> "NetworkConfig":
        """The skeleton every command that trains on a dataset uses (``train``, ``run``, ``cost --dataset``).

        Args:
            data: anything with ``in_channels``, ``image_size`` and ``num_classes``
                (a :class:`gennas.data.DatasetSplits`).
            channels: C of the first stage.
            cells_per_stage: N cells per stage; smaller than NB201's 5 because these networks
                are trained here, on a CPU if need be.
        """
        return cls(channels=channels, cells_per_stage=cells_per_stage, in_channels=data.in_channels,
                   image_size=data.image_size, num_classes=data.num_classes)


class CellNetwork(nn.Module):
    """A classifier built from one cell repeated through the three stages of the skeleton."""

    def __init__(self, cell: Cell, config: NetworkConfig = NetworkConfig(),
                 make_cell: Callable[[int], nn.Module] | None = None) -> None:
        """``make_cell(channels)`` builds each cell slot (default: this cell's :class:`CellModule`).

        The supernet passes its switchable cells here, so the skeleton around them, and
        therefore every parameter name outside the cells, is the standalone network's.
        """
        super().__init__()
        self.cell = cell
        self.config = config
        c1, c2, c3 = config.stage_channels
        n = config.cells_per_stage
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
        )
        make_cell = make_cell or (lambda channels: CellModule(cell, channels))
        layers: list[nn.Module] = [make_cell(c1) for _ in range(n)]
        layers.append(ResidualReduction(c1, c2))
        layers += [make_cell(c2) for _ in range(n)]
        layers.append(ResidualReduction(c2, c3))
        layers += [make_cell(c3) for _ in range(n)]
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c3), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c3, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One running reference ``h``: each stage's input dies as soon as its output exists.
        h = self.stem(x)
        for layer in self.layers:
            h = layer(h)
        h = self.head(h)
        h = self.pool(h)
        h = torch.flatten(h, 1)
        return self.classifier(h)


def build_network(cell: Cell, config: NetworkConfig | None = None, **overrides) -> CellNetwork:
    """Build the skeleton network for ``cell``; keyword overrides patch the default config."""
    if config is None:
        config = NetworkConfig(**overrides)
    elif overrides:
        config = NetworkConfig(**{**config.to_dict(), **overrides})
    return CellNetwork(cell, config)
