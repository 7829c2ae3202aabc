"""GoogLeNet (Inception v1) with a width factor: the paper's ``1/n-Inception`` students."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

# Filter counts of Szegedy et al. 2015, Table 1 (the bvlc_googlenet prototxt):
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
INCEPTION_BLOCKS: Dict[str, Tuple[int, int, int, int, int, int]] = OrderedDict(
    inception_3a=(64, 96, 128, 16, 32, 32),
    inception_3b=(128, 128, 192, 32, 96, 64),
    inception_4a=(192, 96, 208, 16, 48, 64),
    inception_4b=(160, 112, 224, 24, 64, 64),
    inception_4c=(128, 128, 256, 24, 64, 64),
    inception_4d=(112, 144, 288, 32, 64, 64),
    inception_4e=(256, 160, 320, 32, 128, 128),
    inception_5a=(256, 160, 320, 32, 128, 128),
    inception_5b=(384, 192, 384, 48, 128, 128),
)
# Stem filter counts: conv1/7x7_s2, conv2/3x3_reduce, conv2/3x3.
STEM_CHANNELS = (64, 64, 192)
# Stage names accepted by ``out_indices``; 'stem' is the output of pool2 (stride 8).
STAGE_NAMES = ('stem', ) + tuple(INCEPTION_BLOCKS)
# Groups used by ``frozen_stages`` (mmdet convention: 0 = stem, i = stem + first i groups).
STAGE_GROUPS = (('stem', ), ('inception_3a', 'inception_3b'),
                ('inception_4a', 'inception_4b', 'inception_4c', 'inception_4d',
                 'inception_4e'), ('inception_5a', 'inception_5b'))


def scale_channels(channels: int, widen_factor: float) -> int:
    """Filters of a conv layer in a ``widen_factor``-wide network (at least 1)."""
    return max(1, int(round(channels * widen_factor)))


class InceptionBlock(BaseModule):
    """One Inception module: four parallel branches concatenated on channels.

    Args:
        in_channels: channels of the input map.
        channels: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), already scaled.
        conv_cfg, norm_cfg, act_cfg: passed to every :class:`ConvModule`.
        init_cfg: initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 channels: Sequence[int],
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        c1, c3r, c3, c5r, c5, cp = channels
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.branch1x1 = ConvModule(in_channels, c1, 1, **cfg)
        self.branch3x3 = nn.Sequential(
            ConvModule(in_channels, c3r, 1, **cfg), ConvModule(c3r, c3, 3, padding=1, **cfg))
        self.branch5x5 = nn.Sequential(
            ConvModule(in_channels, c5r, 1, **cfg), ConvModule(c5r, c5, 5, padding=2, **cfg))
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), ConvModule(in_channels, cp, 1, **cfg))
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x: Tensor) -> Tensor:
        """Concatenate the four branches (1x1, 3x3, 5x5, pool) on channels."""
        return torch.cat(
            [self.branch1x1(x), self.branch3x3(x), self.branch5x5(x), self.branch_pool(x)], 1)


@MODELS.register_module()
class Inception(BaseModule):
    """GoogLeNet (Inception v1, Szegedy et al. 2015) with every conv's filters scaled.

    ``widen_factor=1/n`` gives the paper's ``1/n-Inception`` (Li et al. 2017): same depth, ``1/n``
    of the filters in **every** conv layer (stem and all four branches of every block, the
    published counts in :data:`INCEPTION_BLOCKS` times ``widen_factor``). The local response
    normalisation layers of the original are left out: normalisation is ``norm_cfg`` (BN by
    default, as students train from scratch). Only the layers up to the last stage named in
    ``out_indices`` are built, so a detector on ``inception_4d`` carries no unused 4e/5a/5b weights.

    Strides: conv1 2, pool1 4, pool2 8 (``stem``, 3a, 3b), pool3 16 (4a-4e), pool4 32 (5a, 5b).
    With ``stage4_stride=8`` pool3 keeps stride 1 (3x3 max, same padding), so 4a-4e stay at stride
    8 and 5a/5b are at 16 (the cross-scale experiment: a stride-8 ``inception_4d`` on a half-size
    image has the map size of the stride-16 one on the full image).

    Args:
        widen_factor: multiplier of every conv's filters (1, 1/2, 1/4, 1/8 in the paper).
        in_channels: channels of the input image.
        out_indices: names of the stages whose outputs are returned, in network order
            (``'stem'``, ``'inception_3a'`` ... ``'inception_5b'``); integers index
            :data:`STAGE_NAMES`.
        stage4_stride: 16 (standard) or 8 (pool3 without stride).
        frozen_stages: freeze the stem (0) and the first ``i`` of the groups (3a-3b),
            (4a-4e), (5a-5b) (``i``); -1 freezes nothing.
        norm_eval: keep BN layers in eval mode during training (freezes their statistics).
        conv_cfg, norm_cfg, act_cfg: passed to every :class:`ConvModule`.
        init_cfg: initialisation config; default Kaiming for convs, constant 1 for norms.
    """

    def __init__(self,
                 widen_factor: float = 1.0,
                 in_channels: int = 3,
                 out_indices: Sequence[Union[str, int]] = ('inception_4d', ),
                 stage4_stride: int = 16,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = [
                     dict(type='Kaiming', layer='Conv2d'),
                     dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
                 ]) -> None:
        super().__init__(init_cfg=init_cfg)
        if widen_factor <= 0:
            raise ValueError(f'widen_factor must be > 0, got {widen_factor}')
        if stage4_stride not in (8, 16):
            raise ValueError(f'stage4_stride must be 8 or 16, got {stage4_stride}')
        self.widen_factor = widen_factor
        self.out_indices = self._parse_out_indices(out_indices)
        self.stage4_stride = stage4_stride
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        last = max(STAGE_NAMES.index(name) for name in self.out_indices)
        self.stage_names: List[str] = list(STAGE_NAMES[:last + 1])
        c1, c2r, c2 = (scale_channels(c, widen_factor) for c in STEM_CHANNELS)
        # Caffe's GoogLeNet pools with ceil mode; kept so map sizes match the original.
        self.stem = nn.Sequential(
            ConvModule(in_channels, c1, 7, stride=2, padding=3, **cfg),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            ConvModule(c1, c2r, 1, **cfg),
            ConvModule(c2r, c2, 3, padding=1, **cfg),
            nn.MaxPool2d(3, stride=2, ceil_mode=True))
        channels, stride = c2, 8
        self.out_channels: Dict[str, int] = dict(stem=c2)
        self.out_strides: Dict[str, int] = dict(stem=8)
        for name in self.stage_names[1:]:
            if name == 'inception_4a':
                pool_stride = 2 if stage4_stride == 16 else 1
                self.pool3 = nn.MaxPool2d(
                    3, stride=pool_stride, padding=1 - pool_stride // 2, ceil_mode=True)
                stride *= pool_stride
            elif name == 'inception_5a':
                self.pool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
                stride *= 2
            block = InceptionBlock(
                channels, [scale_channels(c, widen_factor) for c in INCEPTION_BLOCKS[name]],
                **cfg)
            self.add_module(name, block)
            channels = block.out_channels
            self.out_channels[name] = channels
            self.out_strides[name] = stride
        self._freeze_stages()

    @staticmethod
    def _parse_out_indices(out_indices: Sequence[Union[str, int]]) -> Tuple[str, ...]:
        if isinstance(out_indices, (str, int)):
            out_indices = (out_indices, )
        names = []
        for idx in out_indices:
            if isinstance(idx, int):
                if not -len(STAGE_NAMES) <= idx < len(STAGE_NAMES):
                    raise IndexError(f'out_indices: index {idx} out of range for stages '
                                     f'{STAGE_NAMES}')
                idx = STAGE_NAMES[idx]
            if idx not in STAGE_NAMES:
                raise KeyError(f'out_indices: unknown stage {idx!r}; valid: {STAGE_NAMES}')
            names.append(idx)
        if not names:
            raise ValueError('out_indices is empty')
        return tuple(sorted(set(names), key=STAGE_NAMES.index))

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for group in STAGE_GROUPS[:self.frozen_stages + 1]:
            for name in group:
                module = getattr(self, name, None)
                if module is None:
                    continue
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run the trunk up to the last requested stage.

        Args:
            x: images, (N, in_channels, H, W).

        Returns:
            tuple[Tensor]: the outputs of the stages in ``out_indices``, in network order.
        """
        outs = []
        for name in self.stage_names:
            if name == 'inception_4a':
                x = self.pool3(x)
            elif name == 'inception_5a':
                x = self.pool4(x)
            x = getattr(self, name)(x)
            if name in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'Inception':
        """Set train mode, keeping frozen stages and (with ``norm_eval``) BN layers in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def trunk_parameters(self, last_stage: Optional[str] = None) -> int:
        """Number of parameters of the trunk up to (and including) ``last_stage``.

        Args:
            last_stage: a stage name; default the last built one.

        Returns:
            int: the parameter count (convs and norm layers).
        """
        last_stage = last_stage or self.stage_names[-1]
        if last_stage not in self.stage_names:
            raise KeyError(f'last_stage {last_stage!r} is not built; built: {self.stage_names}')
        names = self.stage_names[:self.stage_names.index(last_stage) + 1]
        return sum(p.numel() for n in names for p in getattr(self, n).parameters())
