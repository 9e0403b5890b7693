"""DARTS' 8 candidate operations and its preprocessing blocks, as in the paper's ``cnn/operations.py``.

Module structure and layer order follow the published code exactly (ReLU -> depthwise ->
pointwise -> BN, separable convs applied twice, the factorized reduction's two offset
1x1 convs), so parameter counts equal the published ones and a checkpoint's tensor shapes
match. All ops keep the channel count; ``stride=2`` halves the side (reduction cells apply
it to the edges leaving the two cell inputs).
"""

from __future__ import annotations

import torch
from torch import nn

from gennas.errors import GennasError


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BN: DARTS' 1x1 input preprocessing."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding,
                                                           bias=False), nn.BatchNorm2d(c_out, affine=affine))


class DilConv(nn.Sequential):
    """ReLU -> dilated depthwise conv -> 1x1 conv -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked (ReLU -> depthwise -> 1x1 -> BN) blocks, the first with the stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=1, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (only a supernet's mixed op ever builds it)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0) if self.stride == 1 else x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the side with two stride-2 1x1 convs offset by one pixel, concatenated, then BN.

    Shapes: (B, C_in, H, W) -> (B, C_out, H/2, W/2); H and W must be even (the two halves
    must have the same size), which :class:`~gennas.nn.darts_network.DartsNetworkConfig` checks.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise GennasError(f"a factorized reduction needs an even channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Release order is deliberate: gennas.metrics.darts_memory replays it byte for byte.
        x = self.relu(x)
        a = self.conv_1(x)
        b = self.conv_2(x[:, :, 1:, 1:])
        del x
        out = torch.cat([a, b], dim=1)
        del a, b
        return self.bn(out)


def make_darts_op(name: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    """One of DARTS' 8 ops on ``channels`` channels (``skip_connect`` at stride 2 is a factorized reduction)."""
    if name == "none":
        return Zero(stride)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, affine)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        k = int(name[-1])
        return SepConv(channels, channels, k, stride, k // 2, affine)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        k = int(name[-1])
        return DilConv(channels, channels, k, stride, 2 * (k // 2), 2, affine)
    raise GennasError(f"op {name!r} is not a DARTS op; DARTS ops: none, max_pool_3x3, avg_pool_3x3, skip_connect, "
                      "sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5")


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (training only).

    Shapes: (B, C, H, W) -> same. Not in place (the published code is), so the input,
    which another node may still read, is left as it was.
    """
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask
