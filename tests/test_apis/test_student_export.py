"""student_config: the extracted student keeps the distiller's preprocessing and input scale."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmmimic.apis import student_config
from mmmimic.apis.student_export import scaled_preprocessor

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROSS_SCALE = osp.join(ROOT, 'configs/cross_scale/tiny/rpn_r18-w8-deconv_mimic_tiny.py')
SAME_SCALE = osp.join(ROOT, 'configs/mimic/tiny/mimic_rpn_r18-w8_tiny.py')


def test_cross_scale_student_gets_a_scaled_input_preprocessor():
    cfg = Config.fromfile(CROSS_SCALE)
    own = cfg.model.student.data_preprocessor
    student = student_config(cfg).model
    dp = student.data_preprocessor
    assert dp.type == 'ScaledInputDataPreprocessor' and dp.input_scale == 0.5
    for key in ('mean', 'std', 'bgr_to_rgb', 'pad_size_divisor'):
        assert dp[key] == own[key], key
    assert cfg.model.student.data_preprocessor.type == 'DetDataPreprocessor'  # input untouched
    assert student.type == 'RPN' and student.neck.type == 'Deconv2xNeck'
    # the preprocessor it names builds (registered, divisor fits the scale)
    from mmdet.registry import MODELS
    built = MODELS.build(dp)
    assert type(built).__name__ == 'ScaledInputDataPreprocessor' and built.input_scale == 0.5


def test_same_scale_student_keeps_a_plain_preprocessor():
    cfg = Config.fromfile(SAME_SCALE)
    assert cfg.model.get('student_input_scale', 1.0) == 1.0
    assert student_config(cfg).model.data_preprocessor.type == 'DetDataPreprocessor'


def test_distiller_preprocessor_wins_and_is_scaled():
    cfg = Config.fromfile(CROSS_SCALE)
    cfg.model.data_preprocessor = dict(type='mmdet.DetDataPreprocessor', mean=[1., 2., 3.],
                                       std=[4., 5., 6.], pad_size_divisor=32)
    dp = student_config(cfg).model.data_preprocessor
    assert dp.type == 'ScaledInputDataPreprocessor'
    assert dp.mean == [1., 2., 3.] and dp.pad_size_divisor == 32 and dp.input_scale == 0.5


def test_default_preprocessor_when_none_is_configured():
    dp = scaled_preprocessor(None, 0.25)
    assert dict(dp) == dict(type='ScaledInputDataPreprocessor', input_scale=0.25)


@pytest.mark.parametrize('dp, message', [
    (dict(type='ScaledInputDataPreprocessor', input_scale=0.5),
     r'already resizes by input_scale=0.5: use one of the two'),
    (dict(type='BatchSyncRandomResize'),
     r'its data preprocessor is BatchSyncRandomResize, but only a DetDataPreprocessor'),
])
def test_preprocessors_that_cannot_carry_the_scale(dp, message):
    cfg = Config.fromfile(CROSS_SCALE)
    cfg.model.data_preprocessor = dp
    with pytest.raises(ValueError, match=r'student_input_scale=0.5.*' + message):
        student_config(cfg)
