"""The student's x2 deconvolution as a neck (cross-scale mimic, paper Sec. 3.5, Table 10)."""
from typing import Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from ..layers import Deconv2x


@MODELS.register_module()
class Deconv2xNeck(BaseModule):
    """The student's x2 deconvolution on its last map, as a neck (paper Sec. 3.5, Table 10).

    With this neck the student's heads read the upsampled map (stride 8 on the half-size input,
    the size of the teacher's stride-16 map on the full-size input), and the deconv stays in the
    deployed student (the paper's "+3.5 ms"). The Table 10 control is the same student trained
    without mimic. Kernel 4, stride 2, padding 1 (:class:`~mmmimic.models.layers.Deconv2x`, the
    layer ``Deconv2xConnector`` uses too); state-dict keys ``deconv.weight``, ``deconv.bias``.

    Args:
        in_channels: channels of the backbone's last map.
        out_channels: channels of the upsampled map.
        act_cfg: optional activation (e.g. ``dict(type='ReLU')``).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 act_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.deconv = Deconv2x(in_channels, out_channels)
        self.act: Optional[nn.Module] = MODELS.build(act_cfg) if act_cfg else None

    def forward(self, x: Sequence[Tensor]) -> Tuple[Tensor]:
        """Args: x: backbone maps; the last one is upsampled. Returns: a 1-tuple."""
        out = self.deconv(x[-1])
        return (self.act(out) if self.act is not None else out, )
