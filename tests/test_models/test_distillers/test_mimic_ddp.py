"""Two-process DDP mimic training on CPU (gloo), launched with torchrun."""
import json
import os
import os.path as osp
import subprocess
import sys

from mmmimic.testing.data import make_tiny_coco

SCRIPT = osp.join(osp.dirname(osp.abspath(__file__)), 'ddp_mimic_train.py')


def test_two_process_ddp_mimic_training(tmp_path, teacher_ckpt):
    data = make_tiny_coco(str(tmp_path / 'data'), num_images=8, img_size=(96, 128))
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
        SCRIPT, '--work-dir', str(work_dir), '--data-root', data['data_root'],
        '--teacher-ckpt', teacher_ckpt, '--iters', '4'
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    report = json.loads((work_dir / 'ddp_report.json').read_text())
    assert report['world_size'] == 2
    assert report['wrapper'] == 'MMDistributedDataParallel'
    assert report['iters'] == 4 and len(report['loss_mimic']) == 4
    assert report['teacher_unchanged'] and not report['teacher_in_reducer']
    assert report['ranks_in_sync']
    # the mimic loss is live on every rank at every step (not only where it is logged) ...
    import math
    assert len(report['loss_mimic_per_rank']) == 2
    for rank_losses in report['loss_mimic_per_rank']:
        assert len(rank_losses) == 4
        assert all(math.isfinite(v) and v > 0 for v in rank_losses)
    assert report['loss_mimic_per_rank'][0] != report['loss_mimic_per_rank'][1]  # own data
    # ... and the connector's gradients are all-reduced: equal on both ranks, every step
    assert report['connector_grad_steps'] == [4, 4]
    assert all(n > 0 for norms in report['connector_grad_norms'] for n in norms)
    assert report['connector_grads_equal']
    assert osp.isfile(work_dir / 'iter_4.pth')
