"""student_config: the extracted student keeps the distiller's preprocessing and input scale."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmmimic.apis import student_config
from mmmimic.apis.student_export import mmmimic_types, scaled_preprocessor

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROSS_SCALE = osp.join(ROOT, 'mmmimic/testing/configs/cross_scale/rpn_r18-w8-deconv_mimic_tiny.py')
SAME_SCALE = osp.join(ROOT, 'mmmimic/testing/configs/mimic/mimic_rpn_r18-w8_tiny.py')


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


# --- what mmdet's tools need: no distiller keys or hooks, mmmimic imported only when used -----
def _distiller_cfg(**evaluator):
    """The same-scale tiny distiller config as ``tools/train.py --teacher`` dumps it: the
    teacher check, the distiller run's keys; optionally another val/test evaluator."""
    cfg = Config.fromfile(SAME_SCALE)
    cfg.teacher_config = '/somewhere/teacher.py'
    cfg.work_dir = '/somewhere/work_dir'
    cfg.launcher = 'pytorch'
    cfg.custom_hooks = cfg.custom_hooks + [dict(type='TeacherCheckHook', num_images=6)]
    cfg.default_hooks.teacher_check = dict(type='mmdet.TeacherCheckHook')
    for key in ('val_evaluator', 'test_evaluator'):
        if evaluator:
            cfg[key] = dict(evaluator)
    return cfg


def test_student_that_uses_mmmimic_keeps_the_import_and_rng_hook():
    cfg = _distiller_cfg()
    assert cfg.val_evaluator.type == 'ProposalRecallMetric'  # registered by mmmimic
    student = student_config(cfg)
    assert student.custom_imports == dict(imports=['mmmimic'], allow_failed_imports=False)
    assert student.custom_hooks == [dict(type='RNGStateHook')]
    assert 'teacher_check' not in student.default_hooks
    assert student.default_hooks.checkpoint.type == 'CheckpointHook'  # mmdet's stay
    for key in ('teacher_config', 'work_dir', 'launcher'):
        assert key not in student, key
    assert mmmimic_types(student.to_dict()) == ['ProposalRecallMetric', 'RNGStateHook']


def test_plain_mmdet_student_imports_no_mmmimic():
    cfg = _distiller_cfg(type='CocoMetric', metric='proposal_fast')
    assert cfg.custom_imports.imports == ['mmmimic']  # the project's runtime imports it
    student = student_config(cfg)
    assert 'custom_imports' not in student and 'custom_hooks' not in student
    assert 'teacher_check' not in student.default_hooks
    assert mmmimic_types(student.to_dict()) == []
    # other imports are kept as they were
    cfg.custom_imports = dict(imports=['mmmimic', 'mmmimic.models', 'os.path'],
                              allow_failed_imports=True)
    assert student_config(cfg).custom_imports == dict(imports=['os.path'],
                                                      allow_failed_imports=True)
    # and where mmmimic is needed it is added next to them, failing loudly
    cfg.custom_imports = dict(imports=['os.path'], allow_failed_imports=False)
    cfg.model.student.backbone = dict(type='Inception')
    assert student_config(cfg).custom_imports == dict(imports=['os.path', 'mmmimic'],
                                                      allow_failed_imports=False)


def test_mmmimic_types_asks_the_registries():
    """Any type whose registered class lives in mmmimic counts, wherever it is in the config and
    whatever its scope prefix; not a hand-kept list: a class registered now is found too."""
    from mmdet.registry import MODELS
    tree = dict(model=dict(type='mmdet.FasterRCNN', backbone=dict(type='mmdet.Inception'),
                           data_preprocessor=dict(type='ScaledInputDataPreprocessor')),
                pipeline=[dict(type='LoadImageFromFile'), [dict(type='StrideAlignedRandomCrop')]],
                evaluator=dict(type='CocoMetric'), hooks=(dict(type='CheckpointHook'), ),
                not_a_type=dict(kind='Inception'))
    assert mmmimic_types(tree) == ['ScaledInputDataPreprocessor', 'StrideAlignedRandomCrop',
                                   'mmdet.Inception']
    from mmmimic.models.backbones import Inception
    assert mmmimic_types(dict(type=Inception)) == ['Inception']

    fresh = type('FreshMimicThing', (), {'__module__': 'mmmimic.models.fresh'})
    MODELS.register_module(module=fresh)
    try:
        assert mmmimic_types(dict(type='FreshMimicThing')) == ['FreshMimicThing']
    finally:
        MODELS._module_dict.pop('FreshMimicThing')
    assert mmmimic_types(dict(type='FreshMimicThing')) == []
