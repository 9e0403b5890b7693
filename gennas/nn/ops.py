"""Candidate operations and the residual reduction block of the NAS-Bench-201 skeleton.

The ops follow the NAS-Bench-201 definitions (ReLU -> Conv -> BN for convolutions,
3x3 average pooling without padded zeros, identity, zero) so that parameter and FLOP
counts of our networks equal the benchmark's own figures.
"""

from __future__ import annotations

import torch
from torch import nn

from gennas.errors import GennasError


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BatchNorm: the NB201 convolution op."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class AvgPool3x3(nn.AvgPool2d):
    """3x3 average pooling that ignores padded zeros (``count_include_pad=False``)."""

    def __init__(self) -> None:
        super().__init__(3, stride=1, padding=1, count_include_pad=False)


def make_op(name: str, channels: int) -> nn.Module:
    """Build one edge op on ``channels`` channels (cells keep shape: stride 1, C in = C out).

    ``none`` edges are never built: the cell skips them, which is both what the benchmark
    does and why a ``none`` edge costs nothing.
    """
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    raise GennasError(f"op {name!r} cannot be built; buildable ops: skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3")


class ResidualReduction(nn.Module):
    """Stride-2 residual block between stages: two ReLUConvBN 3x3 plus avg-pool + 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(
            # ceil_mode keeps the shortcut's size equal to the stride-2 conv's on odd inputs.
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut(x)
        y = self.conv_a(x)
        y = self.conv_b(y)
        return residual + y
