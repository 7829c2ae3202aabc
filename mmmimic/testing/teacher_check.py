"""Configs for the TeacherCheckHook tests (used in-process and by the 2-process worker)."""
import uuid

from mmengine.config import Config

from mmmimic.testing import load_tiny_config
from mmmimic.testing.tiny_mimic import MIMIC_CFG, TEACHER_CFG

# mmdet's usual ImageNet init of a backbone: torchvision is not a dependency of this project
TORCHVISION_INIT = dict(type='Pretrained', checkpoint='torchvision://resnet18')


def teacher_cfg(backbone_init_cfg=TORCHVISION_INIT, model_init_cfg=None):
    """The tiny teacher's model config, with pretrained inits as mmdet configs carry them."""
    model = Config.fromfile(TEACHER_CFG).model
    model.backbone.init_cfg = backbone_init_cfg
    if model_init_cfg is not None:
        model.init_cfg = model_init_cfg
    return model


def check_cfg(work_dir, data_root, teacher_ckpt, num_images=20, max_iters=1, teacher=None,
              val_evaluator=None, **hook_kwargs):
    """A tiny mimic run whose only custom hook is the teacher check."""
    cfg = load_tiny_config(MIMIC_CFG, data_root, work_dir)
    cfg.val_evaluator.pop('ann_file', None)  # ProposalRecallMetric reads gts from the samples
    if val_evaluator is not None:
        cfg.val_evaluator = val_evaluator
    cfg.model.teacher = teacher if teacher is not None else teacher_cfg()
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10**6)
    cfg.param_scheduler = []
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=1)
    cfg.log_processor = dict(by_epoch=False, window_size=1)
    cfg.custom_hooks = [dict(type='TeacherCheckHook', num_images=num_images, **hook_kwargs)]
    cfg.randomness = dict(seed=0)
    cfg.visualizer.name = f'vis_teacher_check_{uuid.uuid4().hex}'
    return cfg


def the_hook(runner):
    return [h for h in runner.hooks if type(h).__name__ == 'TeacherCheckHook'][0]
