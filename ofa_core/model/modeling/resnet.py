"""The image embedder: the first three stages of a ResNet v1.5 (stride 16, 1024 channels).

Module names match the official checkpoints (`conv1`, `bn1`, `layer1.0.downsample.0`, ...)
so weights map one to one.
"""

from __future__ import annotations

import torch
from torch import nn

from ofa_core.model.modeling.drop_path import DropPath, drop_path_rates


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 block with a projection shortcut on the first block of a stage."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, drop_path: float = 0.0) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(identity + self.drop_path(out))


class ResNetTrunk(nn.Module):
    """conv1/bn1/maxpool + three Bottleneck stages; returns `[B, 1024, S/16, S/16]`."""

    def __init__(self, blocks: tuple[int, int, int], drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = 64
        for index, (planes, count, stride) in enumerate(zip((64, 128, 256), blocks, (1, 2, 2)), start=1):
            # The first block of each stage never drops; the others ramp up to the rate.
            rates = drop_path_rates(drop_path_rate, count)
            stage = [Bottleneck(channels, planes, stride)]
            channels = planes * Bottleneck.expansion
            stage += [Bottleneck(channels, planes, drop_path=rates[i]) for i in range(1, count)]
            setattr(self, f"layer{index}", nn.Sequential(*stage))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return self.layer3(self.layer2(self.layer1(x)))
