"""Runner iterations of cross-scale mimic on tiny generated data (half-size student input)."""
import numpy as np
from mmengine.runner import Runner
from test_cross_scale import DECONV_MIMIC_CFG
from test_mimic_runner import tiny_runner_cfg

from mmmimic.testing.data import make_tiny_coco, tiny_coco_dataloader_cfg

MAX_ITERS = 30


def test_runner_cross_scale_mimic_decreases_and_evaluates(tmp_path, teacher_ckpt):
    data = make_tiny_coco(str(tmp_path / 'data'), num_images=8, img_size=(96, 128))
    cfg = tiny_runner_cfg(str(tmp_path / 'work'), data, teacher_ckpt, MAX_ITERS,
                          DECONV_MIMIC_CFG)
    runner = Runner.from_cfg(cfg)
    seen = []
    extract = runner.model.student.extract_feat
    runner.model.student.extract_feat = lambda x: (seen.append(tuple(x.shape[-2:])),
                                                   extract(x))[1]
    runner.train()
    assert set(seen) == {(48, 64)}  # the teacher's batches are 96x128
    mimic = np.asarray(runner.message_hub.get_scalar('train/loss_mimic').data[0])
    assert len(mimic) == MAX_ITERS
    first, last = mimic[:8].mean(), mimic[-8:].mean()
    print(f'cross-scale loss_mimic first 8 {first:.4f} -> last 8 {last:.4f}')
    assert last < 0.7 * first, mimic.round(4)

    # the test loop scores the half-size student with an unchanged metric, boxes in original
    # image coordinates
    val = make_tiny_coco(str(tmp_path / 'data'), num_images=4, img_size=(96, 128), seed=1,
                         split='val')
    cfg.test_dataloader = tiny_coco_dataloader_cfg(val, test_mode=True, batch_size=2)
    cfg.test_evaluator = dict(type='ProposalRecallMetric', proposal_nums=(10, 100),
                              iou_thrs=(0.5, ))
    cfg.test_cfg = dict(type='TestLoop')
    cfg.load_from = None
    tester = Runner.from_cfg(cfg)
    tester.model.load_state_dict(runner.model.state_dict())
    metrics = tester.test()
    print('cross-scale tiny recall', metrics)
    assert all(0 <= v <= 100 for v in metrics.values())
    assert metrics['proposal/recall@100_iou50'] > 0
