"""The mimic-loss contract: a declared input kind, a checked loss_weight, a slot check."""
import math

import pytest
import torch

from mmdet.registry import MODELS
from mmmimic.models.losses import (MIMIC_INPUTS, BaseMimicLoss, PooledFeatureL2Loss,
                                   ProposalSampledL2Loss, RoILogitsL2Loss, RPNLogitsL2Loss,
                                   WholeFeatureL2Loss)

LOSSES = {
    ProposalSampledL2Loss: 'rois',
    PooledFeatureL2Loss: 'rois',
    WholeFeatureL2Loss: 'images',
    RPNLogitsL2Loss: 'rpn_outputs',
    RoILogitsL2Loss: 'roi_head_outputs',
}


@pytest.mark.parametrize('cls', list(LOSSES), ids=lambda c: c.__name__)
def test_every_mimic_loss_follows_the_contract(cls):
    loss = MODELS.build(dict(type=cls.__name__, loss_weight=0.5))
    assert isinstance(loss, BaseMimicLoss)
    assert loss.mimic_input == LOSSES[cls] and loss.mimic_input in MIMIC_INPUTS
    assert loss.loss_weight == 0.5
    with pytest.raises(ValueError, match=f'{cls.__name__}: loss_weight must be a finite number '
                                         '>= 0, got -0.5'):
        cls(loss_weight=-0.5)


@pytest.mark.parametrize('weight', [-1, math.nan, -math.inf, math.inf, None, '2', True])
def test_bad_loss_weight_is_refused(weight):
    with pytest.raises(ValueError, match='loss_weight must be a finite number >= 0'):
        ProposalSampledL2Loss(loss_weight=weight)


def test_loss_weight_scales_the_loss():
    pred, target = torch.ones(3, 2), torch.zeros(3, 2)
    assert RoILogitsL2Loss(loss_weight=0)(pred, target).item() == 0
    assert RoILogitsL2Loss(loss_weight=2)(pred, target).item() == pytest.approx(2 * 6 / 6)


def test_subclass_must_declare_a_known_mimic_input():
    with pytest.raises(TypeError, match=r"NoInput.mimic_input must be one of \['rois'"):

        class NoInput(BaseMimicLoss):

            def forward(self, pred, target):
                return pred

    with pytest.raises(TypeError, match="got 'feature_maps'"):

        class Unknown(BaseMimicLoss):
            mimic_input = 'feature_maps'

            def forward(self, pred, target):
                return pred


def test_subclass_must_implement_forward():

    class NoForward(BaseMimicLoss):
        mimic_input = 'rois'

    with pytest.raises(TypeError, match='abstract'):
        NoForward()


def test_check_mimic_input_names_slot_loss_and_accepted_kinds():
    ProposalSampledL2Loss().check_mimic_input('mimic_loss', ('rois', 'images'))
    with pytest.raises(TypeError) as err:
        RoILogitsL2Loss().check_mimic_input('mimic_loss', ('rois', 'images'))
    assert str(err.value) == ("mimic_loss: RoILogitsL2Loss compares 'roi_head_outputs', but "
                              "mimic_loss takes a loss of mimic_input ['rois', 'images']")
