"""CaltechMRMetric and ProposalRecallMetric called as mmengine metrics on data-sample dicts.
(The full converter -> dataset -> metric path is tests/test_tools/test_caltech_pipeline.py.)"""
import os
import os.path as osp

import numpy as np
import pytest
import torch

from mmmimic.datasets import caltech_io
from mmmimic.evaluation import CaltechMRMetric, ProposalRecallMetric


def _sample(ann_path, dets, img_id):
    d = torch.tensor(dets, dtype=torch.float32).reshape(-1, 5)
    return dict(img_id=img_id, ann_path=ann_path,
                pred_instances=dict(bboxes=torch.cat([d[:, :2], d[:, :2] + d[:, 2:4]], 1),
                                    scores=d[:, 4]))


def test_caltech_metric_t2_and_files(tmp_path):
    ann = str(tmp_path / 'set06_V000_I00029.txt')
    caltech_io.write_bbgt(ann, [dict(lbl='person', pos=[100, 100, 41, 100])])
    metric = CaltechMRMetric(settings=['Reasonable', 'Overlap=75'], outfile_prefix=str(tmp_path),
                             save_result_files=True, algorithm='student')
    metric.dataset_meta = dict(classes=('person', ))
    # T2 in image coordinates: FP at .9, then TP at .8
    metric.process({}, [_sample(ann, [[400, 100, 41, 100, .9], [100, 100, 41, 100, .8]],
                                'set06_V000_I00029')])
    out = metric.evaluate(1)
    assert out['caltech/Reasonable_MR-2'] == 0 and out['caltech/Reasonable_MR-4'] == 0
    assert out['caltech/Overlap=75_MR-2'] == 0
    # AP: the TP comes after the FP, precision 1/2 at recall 1
    assert out['caltech/Reasonable_AP50'] == 50 and out['caltech/Overlap=75_AP75'] == 50
    assert sorted(out) == ['caltech/Overlap=75_AP75', 'caltech/Overlap=75_MR-2',
                           'caltech/Overlap=75_MR-4', 'caltech/Reasonable_AP50',
                           'caltech/Reasonable_MR-2', 'caltech/Reasonable_MR-4']
    assert osp.isfile(tmp_path / 'caltech_Overlap-75_mr_fppi.png')
    rows = caltech_io.read_result_file(str(tmp_path / 'res' / 'student' / 'set06' / 'V000.txt'))
    np.testing.assert_allclose(rows, [[30, 400, 100, 41, 100, .9], [30, 100, 100, 41, 100, .8]],
                               rtol=1e-6)

    floor = CaltechMRMetric(log_floor=1e-10, plot=False)
    floor.process({}, [_sample(ann, [[400, 100, 41, 100, .9], [100, 100, 41, 100, .8]], 'x')])
    assert floor.evaluate(1)['caltech/Reasonable_MR-2'] == pytest.approx(7.7426, abs=1e-4)


def test_caltech_metric_needs_ann_path():
    metric = CaltechMRMetric()
    with pytest.raises(KeyError, match='ann_path.*meta_keys'):
        metric.process({}, [dict(img_path='a.jpg', pred_instances=dict(bboxes=torch.zeros(0, 4),
                                                                      scores=torch.zeros(0)))])


def test_proposal_recall_metric():
    metric = ProposalRecallMetric(proposal_nums=(1, 300), iou_thrs=(.5, .7))
    gt = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 40.]])
    props = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.], [50., 50., 60., 60.]])
    scores = torch.tensor([.9, .8, .99])
    metric.process({}, [dict(gt_instances=dict(bboxes=gt),
                             pred_instances=dict(bboxes=props, scores=scores))])
    metric.process({}, [dict(gt_instances=dict(bboxes=torch.zeros(0, 4)),
                             pred_instances=dict(bboxes=props, scores=torch.ones(3)))])
    out = metric.evaluate(2)
    # top-1 is the (50, 50) box: nothing; all: the first gt exactly, the second at IoU .5
    assert out['proposal/recall@1_iou50'] == 0
    assert out['proposal/recall@300_iou50'] == 100
    assert out['proposal/recall@300_iou70'] == 50
    tall = ProposalRecallMetric(min_gt_height=15)
    tall.process({}, [dict(gt_instances=dict(bboxes=gt),
                           pred_instances=dict(bboxes=props, scores=torch.ones(3)))])
    assert tall.evaluate(1)['proposal/recall@300_iou70'] == 0
    with pytest.raises(KeyError, match='gt_instances'):
        tall.process({}, [dict(pred_instances=dict(bboxes=props, scores=torch.ones(3)))])


def test_caltech_metric_zero_detections(tmp_path):
    """A detector that finds nothing scores MR 100 % and writes empty result files."""
    ann = str(tmp_path / 'set06_V000_I00029.txt')
    caltech_io.write_bbgt(ann, [dict(lbl='person', pos=[100, 100, 41, 100])])
    metric = CaltechMRMetric(settings=['Reasonable', 'All'], outfile_prefix=str(tmp_path),
                             save_result_files=True, algorithm='empty')
    metric.process({}, [_sample(ann, [], 'set06_V000_I00029'),
                        _sample(ann, [], 'set06_V000_I00059')])
    out = metric.evaluate(2)
    assert out == {'caltech/Reasonable_MR-2': 100, 'caltech/Reasonable_MR-4': 100,
                   'caltech/Reasonable_AP50': 0, 'caltech/All_MR-2': 100, 'caltech/All_MR-4': 100,
                   'caltech/All_AP50': 0}
    assert osp.isfile(tmp_path / 'caltech_All_mr_fppi.png')
    res_file = tmp_path / 'res' / 'empty' / 'set06' / 'V000.txt'
    assert osp.getsize(res_file) == 0
    assert caltech_io.read_result_file(str(res_file)).shape == (0, 6)


def test_caltech_metric_refuses_non_finite_detections(tmp_path):
    ann = str(tmp_path / 'set06_V000_I00029.txt')
    caltech_io.write_bbgt(ann, [dict(lbl='person', pos=[100, 100, 41, 100])])
    metric = CaltechMRMetric(plot=False)
    metric.process({}, [_sample(ann, [[100, 100, 41, 100, .9]], 'set06_V000_I00029')])
    with pytest.raises(ValueError, match=r'set06_V000_I00059.*2 of 3 detections have NaN/inf'):
        metric.process({}, [_sample(ann, [[100, 100, 41, 100, float('nan')],
                                          [1, 2, 3, 4, .5], [1, float('inf'), 3, 4, .5]],
                                    'set06_V000_I00059')])


def test_caltech_metric_validates_settings_at_build():
    with pytest.raises(KeyError, match=r"CaltechMRMetric: unknown Caltech setting 'Resonable'; "
                                       r'known: Reasonable, All, Scale=large'):
        CaltechMRMetric(settings=['Reasonable', 'Resonable'])
    with pytest.raises(KeyError, match=r'CaltechMRMetric: custom Caltech setting .* lacks '
                                       r"\['vis_range'\]"):
        CaltechMRMetric(settings=[dict(name='tall', height_range=(90, 200))])
    with pytest.raises(ValueError, match='CaltechMRMetric: settings must be a list'):
        CaltechMRMetric(settings='Reasonable')
    metric = CaltechMRMetric(settings=['All', dict(name='tall', height_range=(90, 200),
                                                   vis_range=(.5, 1))])
    assert len(metric.settings) == 2


def test_caltech_metric_refuses_an_image_evaluated_twice(tmp_path):
    """Issue 24: an image list that repeats an image made the metric score it twice."""
    ann = str(tmp_path / 'set06_V000_I00029.txt')
    caltech_io.write_bbgt(ann, [dict(lbl='person', pos=[100, 100, 41, 100])])
    metric = CaltechMRMetric(plot=False)
    dets = [[100, 100, 41, 100, .9]]
    metric.process({}, [_sample(ann, dets, 'set06_V000_I00029'),
                        _sample(ann, [], 'set06_V000_I00059'),
                        _sample(ann, dets, 'set06_V000_I00029')])
    with pytest.raises(ValueError, match=r'CaltechMRMetric: image set06_V000_I00029 was evaluated '
                                         r'twice \(images 0 and 2 of 3\): the image list repeats'):
        metric.evaluate(3)


def test_caltech_metric_drops_zero_size_boxes_so_result_files_stay_readable(tmp_path):
    """A model box clipped to zero width is dropped (with a warning) rather than written into a
    result file that the scorer refuses: online and offline scores stay equal."""
    from mmmimic.evaluation.functional import score_result_dirs
    ann_dir = tmp_path / 'ann'
    ann = str(ann_dir / 'set06_V000_I00029.txt')
    caltech_io.write_bbgt(ann, [dict(lbl='person', pos=[100, 100, 41, 100])])
    metric = CaltechMRMetric(plot=False, outfile_prefix=str(tmp_path / 'out'),
                             save_result_files=True, algorithm='clip')
    metric.process({}, [_sample(ann, [[640, 100, 0, 100, .95], [100, 100, 41, 100, .9]],
                                'set06_V000_I00029')])
    out = metric.evaluate(1)
    assert out['caltech/Reasonable_MR-2'] == 0
    res = tmp_path / 'out' / 'res' / 'clip'
    rows = caltech_io.read_result_file(str(res / 'set06' / 'V000.txt'))
    np.testing.assert_allclose(rows, [[30, 100, 100, 41, 100, .9]], rtol=1e-6)
    lst = tmp_path / 'test.txt'
    lst.write_text('set06_V000_I00029\n')
    offline = score_result_dirs([str(res)], str(ann_dir), img_list=str(lst), sets=[6])
    assert 100 * offline['clip']['Reasonable']['MR-2'] == out['caltech/Reasonable_MR-2']
    # the second evaluation replaces the metric's own files; no temporary file is left
    metric.process({}, [_sample(ann, [[100, 100, 41, 100, .9]], 'set06_V000_I00029')])
    metric.evaluate(1)
    assert os.listdir(res / 'set06') == ['V000.txt']
