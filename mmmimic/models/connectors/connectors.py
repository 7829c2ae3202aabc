"""Connectors: the regression layer ``r`` of the paper mapping the student map to the teacher's.

Every connector declares ``in_channels`` (student), ``out_channels`` (teacher) and
``scale_factor`` (spatial upsampling it applies), which the distiller checks against the two
networks at build time.
"""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from ..layers import Deconv2x


class BaseConnector(BaseModule):
    """Common attributes of connectors.

    Args:
        in_channels: channels of the student map.
        out_channels: channels of the teacher map.
        init_cfg: mmengine init config.
    """

    scale_factor: int = 1

    def __init__(self, in_channels: int, out_channels: int,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels

    def check_channels(self, student_channels: int, teacher_channels: int) -> None:
        """Raise ``ValueError`` naming both counts unless they match this connector."""
        if (self.in_channels, self.out_channels) != (student_channels, teacher_channels):
            raise ValueError(
                f'{type(self).__name__} maps {self.in_channels} -> {self.out_channels} channels, '
                f'but the student map has {student_channels} channels and the teacher map has '
                f'{teacher_channels} channels')


@MODELS.register_module()
class Conv1x1Connector(BaseConnector):
    """1x1 convolution (the paper's ``r``); no norm and no activation by default, since the
    teacher's features may be negative.

    Args:
        in_channels: student channels.
        out_channels: teacher channels.
        bias: whether the conv has a bias.
        norm_cfg: optional norm after the conv.
        act_cfg: optional activation after the conv.
        init_cfg: mmengine init config (default: ConvModule's Kaiming init).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 bias: bool = True,
                 norm_cfg: OptConfigType = None,
                 act_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(in_channels, out_channels, init_cfg)
        self.conv = ConvModule(
            in_channels, out_channels, 1, bias=bias, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: ``(B, in_channels, H, W)``. Returns: ``(B, out_channels, H, W)``."""
        return self.conv(x)


@MODELS.register_module()
class Deconv2xConnector(BaseConnector):
    """Transposed convolution that upsamples exactly x2 (cross-scale mimic, paper Sec. 3.5).

    Kernel 4, stride 2, padding 1: ``(H, W) -> (2H, 2W)`` (:class:`~mmmimic.models.layers.Deconv2x`,
    the layer ``Deconv2xNeck`` uses too).

    Args:
        in_channels: student channels.
        out_channels: teacher channels.
        act_cfg: optional activation after the deconv (none by default).
        init_cfg: mmengine init config.
    """

    scale_factor = 2

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 act_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(in_channels, out_channels, init_cfg)
        self.deconv = Deconv2x(in_channels, out_channels)
        self.act: Optional[nn.Module] = MODELS.build(act_cfg) if act_cfg else None

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: ``(B, in_channels, H, W)``. Returns: ``(B, out_channels, 2H, 2W)``."""
        x = self.deconv(x)
        return self.act(x) if self.act is not None else x


@MODELS.register_module()
class IdentityConnector(BaseConnector):
    """No transformation; only valid when student and teacher maps have equal channels.

    Args:
        in_channels: student channels.
        out_channels: teacher channels; must equal ``in_channels``.
    """

    def __init__(self, in_channels: int, out_channels: Optional[int] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        out_channels = in_channels if out_channels is None else out_channels
        if in_channels != out_channels:
            raise ValueError(f'IdentityConnector cannot map {in_channels} student channels to '
                             f'{out_channels} teacher channels; use Conv1x1Connector')
        super().__init__(in_channels, out_channels, init_cfg)

    def forward(self, x: Tensor) -> Tensor:
        """Returns ``x`` unchanged."""
        return x
