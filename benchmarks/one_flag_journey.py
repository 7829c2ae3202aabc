"""The one-flag journey of a newcomer, with mmdet 3.3's own configs, on tiny generated COCO data.

    python benchmarks/one_flag_journey.py [--out benchmarks/results/one_flag_journey]
        [--work-dir work_dirs/one_flag_journey] [--overwrite] [--teacher-epochs 4]
        [--student-iters 40] [--c4-iters 4] [--dist-iters 4] [--skip-onnx]

Every step is a subprocess typed exactly as a user types it (``python`` is the project's venv
interpreter, put first on PATH as an activated venv does), timed with ``time.perf_counter``:

0. the data: ``tools/misc/make_tiny_data.py`` (128x96 images, one class, train/val);
1. the teacher: mmdet's ``faster-rcnn_r50_fpn_1x_coco.py`` trained from scratch
   (``--cfg-options model.backbone.init_cfg=None``: nothing can be downloaded) while the config
   later given to ``--teacher`` keeps mmdet's ImageNet init (``torchvision://resnet50``);
2. one-flag students (``--teacher TEACHER_CFG TEACHER_CKPT``, teacher check on): R-18 FPN Faster
   R-CNN (the flag alone, which now mimics the pyramid: the committed results predate that and
   mimicked the last map; and P2 with ``--mimic-student-feature 0 --mimic-teacher-feature 0``),
   mmdet's R-50-C4 Faster R-CNN (as shipped: refused for its caffe normalisation; with the
   teacher's normalisation and ``--mimic-teacher-feature 2``; and without that flag: the stride
   error), Cascade R-CNN R-18, RPN-only R-18 (``ProposalRecallMetric``) and RetinaNet (a
   one-stage student: trains, its detections are the mimic RoIs; the committed results predate
   one-stage students and recorded it refused);
3. Ctrl-C and ``--resume``: the R-18 FPN student of step 2 is the straight run; the same command
   is interrupted with SIGINT after its first checkpoint, then rerun with ``--resume``; the final
   checkpoints' state_dict and optimizer tensors are compared bit for bit;
4. ``extract_student.py``, then mmdet's own ``tools/test.py`` (run with ``python -X importtime``
   to show whether mmmimic is imported);
5. ``tools/dist_train.sh ... 2 --teacher ...`` (2 processes, CPU gloo);
6. (optional) ``tools/deployment/export_onnx.py`` of the extracted students and
   ``tools/test.py CONFIG model.onnx``.

The user configs are written into ``WORK/configs``; they inherit mmdet's configs
(``_base_ = 'mmdet::...'``) and override only the data (tiny data root, a 128x96 Resize, batch 2,
no workers, one class), the schedule (short, a short warmup, seed 0) and, for students, the
backbone (ResNet-18 without pretrained init) or, for the C4 student, the normalisation. Each
command's stdout/stderr is kept in ``WORK/logs``. Writes ``journey.md`` and ``journey.json`` to
``--out`` (refused when they exist, unless ``--overwrite``) and exits 1 when a step that must
pass failed.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..'))
from mmmimic.fileio import atomic_write_text, check_output_path  # noqa: E402  (stdlib only)
from mmmimic.utils.tables import markdown_table  # noqa: E402  (tabulate only)

MARKER = '.one_flag_journey'
PYTORCH_NORM = ("dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], "
                "bgr_to_rgb=True)")

# --------------------------------------------------------------------------------------------
# The user configs
# --------------------------------------------------------------------------------------------
DATA = '''
# --- data: the tiny generated COCO set (tools/misc/make_tiny_data.py), 128x96 images, 1 class
data_root = '{data_root}/'
metainfo = dict(classes=('person', ))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
'''

TEACHER_SCHEDULE = '''
# --- schedule: {epochs} epochs of 24 iterations, 24 warmup iterations, lr / 10 for the last
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=24),
    dict(type='MultiStepLR', begin=0, end={epochs}, by_epoch=True, milestones=[{last}],
         gamma=0.1)
]
default_hooks = dict(logger=dict(interval=6), checkpoint=dict(interval={epochs}))
randomness = dict(seed=0)
'''

STUDENT_SCHEDULE = '''
# --- schedule: {iters} iterations, {warmup} warmup iterations, seed 0
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={iters},
                 val_interval={val_interval})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end={warmup})]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval={ckpt}))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
'''

R18_FPN = '''
# --- student: ResNet-18, no pretrained init
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]),
    roi_head=dict(bbox_head=dict(num_classes=1)))
'''

CASCADE_HEAD = '''        dict(type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024,
             roi_feat_size=7, num_classes=1, reg_class_agnostic=True,
             bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                             target_stds={stds}),
             loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
             loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
'''
CASCADE = '''
# --- student: ResNet-18, no pretrained init; mmdet's three cascade heads with num_classes=1
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]),
    roi_head=dict(bbox_head=[
''' + ''.join(CASCADE_HEAD.format(stds=s) for s in (
    '[0.1, 0.1, 0.2, 0.2]', '[0.05, 0.05, 0.1, 0.1]', '[0.033, 0.033, 0.067, 0.067]')) + '''    ]))
'''

RPN = '''
# --- student: ResNet-18, no pretrained init
model = dict(backbone=dict(depth=18, init_cfg=None), neck=dict(in_channels=[64, 128, 256, 512]))
'''
RPN_METRIC = '''
# mmdet's proposal_fast metric crashes under numpy >= 1.24: this project's proposal recall
custom_imports = dict(imports=['mmmimic'], allow_failed_imports=False)
val_evaluator = dict(_delete_=True, type='ProposalRecallMetric', proposal_nums=(10, 100, 300),
                     iou_thrs=(0.5, 0.7))
test_evaluator = val_evaluator
'''

C4 = '''
# --- student: mmdet's R-50-C4 Faster R-CNN without pretrained init (backbone and shared head)
model = dict(
    backbone=dict(init_cfg=None),
    roi_head=dict(shared_head=dict(init_cfg=None), bbox_head=dict(num_classes=1)))
'''

C4_NORM = '''_base_ = './faster-rcnn_r50-caffe-c4_tiny.py'
# a student trained from scratch does not need caffe's normalisation: take the teacher's
model = dict(data_preprocessor={norm})
'''.format(norm=PYTORCH_NORM)

RETINANET = '''
model = dict(backbone=dict(depth=18, init_cfg=None), neck=dict(in_channels=[64, 128, 256, 512]),
             bbox_head=dict(num_classes=1))
'''

MMDET_CFG = {
    'faster_fpn': 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'c4': 'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py',
    'cascade': 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    'rpn': 'mmdet::rpn/rpn_r50_fpn_1x_coco.py',
    'retinanet': 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
}


def write_configs(work: str, data_root: str, args) -> dict:
    """The journey's user configs (paths relative to the repository)."""
    cdir = osp.join(work, 'configs')
    os.makedirs(cdir, exist_ok=True)
    data = DATA.format(data_root=data_root)

    def student_sched(iters, ckpt=None, val=True):
        return STUDENT_SCHEDULE.format(iters=iters, warmup=min(10, iters),
                                       val_interval=iters if val else iters + 1,
                                       ckpt=ckpt or iters)

    def base(key):
        return f"_base_ = '{MMDET_CFG[key]}'\n"

    it = args.student_iters
    files = {
        'teacher': ('teacher_faster-rcnn_r50_fpn_tiny.py',
                    base('faster_fpn') + '# mmdet\'s model as it is: ImageNet init '
                    '(torchvision://resnet50) kept, one class\n'
                    'model = dict(roi_head=dict(bbox_head=dict(num_classes=1)))\n' + data +
                    TEACHER_SCHEDULE.format(epochs=args.teacher_epochs,
                                            last=args.teacher_epochs - 1)),
        'r18_fpn': ('faster-rcnn_r18_fpn_tiny.py',
                    base('faster_fpn') + R18_FPN + data + student_sched(it, ckpt=it // 2)),
        'c4': ('faster-rcnn_r50-caffe-c4_tiny.py',
               base('c4') + C4 + data + student_sched(args.c4_iters, val=False)),
        'c4_norm': ('faster-rcnn_r50-c4-teacher-norm_tiny.py', C4_NORM),
        'cascade': ('cascade-rcnn_r18_fpn_tiny.py',
                    base('cascade') + CASCADE + data + student_sched(it)),
        'rpn': ('rpn_r18_fpn_tiny.py',
                base('rpn') + RPN + data + student_sched(it) + RPN_METRIC),
        'retinanet': ('retinanet_r18_fpn_tiny.py',
                      base('retinanet') + RETINANET + data + student_sched(it)),
    }
    paths = {}
    for key, (name, text) in files.items():
        path = osp.join(cdir, name)
        with open(path, 'w') as fh:
            fh.write(text)
        paths[key] = osp.relpath(path, REPO)
    return paths


# --------------------------------------------------------------------------------------------
# Running and reading the commands
# --------------------------------------------------------------------------------------------
class Journey:

    def __init__(self, work: str):
        self.work = work
        self.logs = osp.join(work, 'logs')
        os.makedirs(self.logs, exist_ok=True)
        self.steps = []
        venv_bin = osp.dirname(sys.executable)
        self.env = dict(os.environ)
        self.env.pop('PYTHONPATH', None)
        self.env.pop('MMMIMIC_DEBUG', None)
        self.env['PATH'] = venv_bin + os.pathsep + self.env.get('PATH', '')
        self.env['VIRTUAL_ENV'] = osp.dirname(venv_bin)
        self.env['PYTHONWARNINGS'] = 'ignore::UserWarning'  # pkg_resources noise in every log

    def run(self, name: str, argv, env_prefix: str = '', interrupt=None):
        """Run ``argv`` from the repository root; returns (rc, seconds, stdout, stderr)."""
        env = dict(self.env)
        for item in shlex.split(env_prefix):
            k, v = item.split('=', 1)
            env[k] = v
        out_path = osp.join(self.logs, f'{name}.stdout.log')
        err_path = osp.join(self.logs, f'{name}.stderr.log')
        shown = (env_prefix + ' ' if env_prefix else '') + shlex.join(argv)
        print(f'\n[{name}] $ {shown}', flush=True)
        t0 = time.perf_counter()
        with open(out_path, 'w') as out, open(err_path, 'w') as err:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err,
                                    start_new_session=True)
            interrupted_at = None
            if interrupt is not None:
                interrupted_at = interrupt(proc)
            rc = proc.wait()
        seconds = time.perf_counter() - t0
        with open(out_path, errors='replace') as fh:
            stdout = fh.read()
        with open(err_path, errors='replace') as fh:
            stderr = fh.read()
        print(f'[{name}] rc={rc} in {seconds:.1f} s', flush=True)
        return dict(rc=rc, seconds=seconds, stdout=stdout, stderr=stderr, command=shown,
                    logs=[osp.relpath(out_path, REPO), osp.relpath(err_path, REPO)],
                    interrupted_at=interrupted_at)

    def record(self, step: str, res: dict, ok: bool, outcome: str, required: bool = True,
               **numbers):
        entry = dict(step=step, command=res['command'] if res else '', seconds=(
            round(res['seconds'], 1) if res else None), rc=res['rc'] if res else None,
            ok=bool(ok), required=required, outcome=outcome, numbers=numbers,
            logs=res['logs'] if res else [])
        self.steps.append(entry)
        flag = 'ok' if ok else ('FAILED' if required else 'failed (optional)')
        print(f'[{step}] {flag}: {outcome}', flush=True)
        return entry


def last_float(pattern: str, text: str):
    hits = re.findall(pattern, text)
    return float(hits[-1]) if hits else None


def error_lines(stderr: str):
    return [ln for ln in stderr.splitlines() if ln.startswith('error:')]


def teacher_verdict(text: str):
    """The teacher check's summary line: (metric, teacher, chance, images, reused)."""
    m = re.findall(r'TeacherCheckHook: teacher \S+: (\S+) = ([-\d.]+) on (\d+) validation '
                   r'images; .*?chance baseline\): ([-\d.]+) \(better by [-\d.]+ >= [\d.]+\)'
                   r'( \(verdict reused)?', text)
    if not m:
        return None
    metric, t, n, r, reused = m[-1]
    return dict(metric=metric, teacher=float(t), chance=float(r), images=int(n),
                reused=bool(reused))


def losses(text: str, key: str = 'loss_mimic'):
    return [float(v) for v in re.findall(rf'\b{key}: ([-\d.e+]+|nan|inf)', text)]


def verdict_text(v):
    if not v:
        return 'no teacher check line'
    return (f"teacher check {v['metric']} {v['teacher']:.3f} vs chance {v['chance']:.3f} on "
            f"{v['images']} images" + (' (reused)' if v['reused'] else ''))


def check_seconds(text: str):
    """Seconds between the teacher check's first and last log line (1 s resolution)."""
    stamps = [datetime.datetime.strptime(m, '%m/%d %H:%M:%S') for m in re.findall(
        r'^(\d\d/\d\d \d\d:\d\d:\d\d) - mmengine - INFO - TeacherCheckHook: (?:scoring|teacher)',
        text, flags=re.M)]
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) >= 2 else None


def train_outcome(res: dict, metric_key: str = 'coco/bbox_mAP'):
    text = res['stdout'] + res['stderr']
    v = teacher_verdict(text)
    mimic = losses(text)
    metric = last_float(rf'{re.escape(metric_key)}: ([-\d.]+)', text)
    parts = [verdict_text(v)]
    secs = check_seconds(text)
    if secs is not None:
        parts[0] += f' ({secs:.0f} s)'
    if mimic:
        parts.append(f'loss_mimic {mimic[0]:.4f} -> {mimic[-1]:.4f}')
    recall = {}
    if metric_key.startswith('proposal/'):
        for key, val in re.findall(r'proposal/(recall@\d+_iou\d+): ([-\d.]+)', text):
            recall[key] = float(val)  # the last val wins
        if recall:
            parts.append('proposal recall (%) ' + ', '.join(
                f'{k} {v:.1f}' for k, v in recall.items()))
    elif metric is not None:
        parts.append(f'{metric_key} {metric:.3f}')
    elif 'results of the whole dataset is empty' in text:
        parts.append('val: no detection above the score threshold (no mAP)')
    if res['rc'] != 0:
        err = error_lines(res['stderr'])
        parts.append('error: ' + (err[-1] if err else res['stderr'].strip()[-300:]))
    return '; '.join(parts), dict(teacher_check=v, teacher_check_seconds=secs,
                                  loss_mimic=mimic and [mimic[0], mimic[-1]],
                                  metric=metric_key, value=metric, recall=recall or None)


def one_line_refusal(res: dict):
    """(refused with exactly one 'error:' line and no traceback, that line)."""
    err = error_lines(res['stderr'])
    if err:
        return res['rc'] != 0 and len(err) == 1 and 'Traceback' not in res['stderr'], err[0]
    tail = res['stderr'].strip().splitlines()[-1:] or ['(nothing on stderr)']
    traceback = ' (after a traceback)' if 'Traceback' in res['stderr'] else ''
    return False, tail[0] + traceback


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def compare_checkpoints(path_a: str, path_b: str) -> dict:
    """Bit-for-bit comparison of the state_dict and optimizer tensors of two checkpoints."""
    import torch

    def tensors(obj, prefix, out):
        if isinstance(obj, torch.Tensor):
            out[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                tensors(v, f'{prefix}.{k}', out)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                tensors(v, f'{prefix}.{i}', out)
        return out

    a = torch.load(path_a, map_location='cpu', weights_only=False)
    b = torch.load(path_b, map_location='cpu', weights_only=False)
    result = {}
    for part in ('state_dict', 'optimizer'):
        ta, tb = tensors(a.get(part), part, {}), tensors(b.get(part), part, {})
        same = [k for k in ta if k in tb and ta[k].dtype == tb[k].dtype and
                ta[k].shape == tb[k].shape and torch.equal(
                    ta[k].contiguous().view(-1).view(torch.uint8),
                    tb[k].contiguous().view(-1).view(torch.uint8))]
        result[part] = dict(total=len(ta), other_total=len(tb), identical=len(same),
                            differ=sorted(set(ta) ^ set(tb) | (set(ta) & set(tb)) - set(same))[:10])
    pa = a.get('optimizer', {}).get('param_groups')
    pb = b.get('optimizer', {}).get('param_groups')
    result['param_groups_equal'] = pa == pb
    result['iter'] = (a.get('meta', {}).get('iter'), b.get('meta', {}).get('iter'))
    return result


# --------------------------------------------------------------------------------------------
# The journey
# --------------------------------------------------------------------------------------------
def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=osp.join('benchmarks', 'results', 'one_flag_journey'),
                        help='folder of journey.md / journey.json')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'one_flag_journey'),
                        help='configs, data, work dirs and logs of the commands')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace journey.md/json and a work dir of an earlier journey')
    parser.add_argument('--num-train', type=int, default=48)
    parser.add_argument('--num-val', type=int, default=12)
    parser.add_argument('--teacher-epochs', type=int, default=4,
                        help='teacher epochs (24 iterations each at 48 images)')
    parser.add_argument('--student-iters', type=int, default=40,
                        help='iterations of each FPN/Cascade/RPN student (even)')
    parser.add_argument('--c4-iters', type=int, default=4,
                        help='iterations of the R-50-C4 student (slow: 512 RoIs through res5; '
                        'its validation at the last iteration is slow too)')
    parser.add_argument('--dist-iters', type=int, default=4)
    parser.add_argument('--skip-onnx', action='store_true')
    parser.add_argument('--reuse-teacher', metavar='CKPT',
                        help='development: skip step 1 and use this teacher checkpoint')
    return parser.parse_args()


def main():
    args = parse_args()
    # A user's shell runs the commands with Ctrl-C enabled. This script may itself run as a
    # background job (`cmd &`), which a non-interactive shell starts with SIGINT ignored; an
    # ignored signal stays ignored across exec, and Python then installs no KeyboardInterrupt
    # handler: step 3's Ctrl-C would do nothing. A handled signal is reset to its default at exec.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.student_iters < 4 or args.student_iters % 2:
        sys.exit('--student-iters must be even and >= 4 (the resume step stops at half)')
    out_dir = osp.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    md_path, json_path = osp.join(out_dir, 'journey.md'), osp.join(out_dir, 'journey.json')
    for p in (md_path, json_path):
        check_output_path(p, args.overwrite)
    work = osp.abspath(args.work_dir)
    if osp.exists(work):
        if not args.overwrite:
            sys.exit(f'{work} exists; pass --overwrite to replace it (journey work dirs only)')
        if not osp.isfile(osp.join(work, MARKER)):
            sys.exit(f'{work} is not a journey work dir (no {MARKER}); not removing it')
        shutil.rmtree(work)
    os.makedirs(work)
    open(osp.join(work, MARKER), 'w').close()
    rel = lambda p: osp.relpath(p, REPO)  # noqa: E731
    wrel = rel(work)
    j = Journey(work)
    t_start = time.perf_counter()
    py = 'python'
    mmdet_tools = osp.join(osp.dirname(__import__('importlib').util.find_spec(
        'mmdet').origin), '.mim', 'tools')

    # 0. data --------------------------------------------------------------------------------
    data_root = osp.join(wrel, 'data')
    res = j.run('0_data', [py, 'tools/misc/make_tiny_data.py', data_root, '--num-train',
                           str(args.num_train), '--num-val', str(args.num_val)])
    j.record('0 data', res, res['rc'] == 0,
             f'{args.num_train} train / {args.num_val} val images, 128x96, 1 class (seeds 0/1)')
    cfg = write_configs(work, osp.join(work, 'data'), args)

    # 1. teacher -----------------------------------------------------------------------------
    teacher_cfg = cfg['teacher']
    teacher_dir = osp.join(wrel, 'teacher')
    teacher_ckpt = osp.join(teacher_dir, f'epoch_{args.teacher_epochs}.pth')
    from mmengine.config import Config
    init = Config.fromfile(osp.join(REPO, teacher_cfg)).model.backbone.get('init_cfg')
    if args.reuse_teacher:
        teacher_ckpt = args.reuse_teacher
        j.record('1 teacher', None, True, f'reused {teacher_ckpt} (development run)',
                 required=False)
        teacher_map = None
    else:
        res = j.run('1_teacher', [py, 'tools/train.py', teacher_cfg, '--work-dir', teacher_dir,
                                  '--cfg-options', 'model.backbone.init_cfg=None'])
        teacher_map = last_float(r'coco/bbox_mAP: ([-\d.]+)', res['stdout'])
        ok = res['rc'] == 0 and osp.isfile(osp.join(REPO, teacher_ckpt)) and \
            teacher_map is not None and teacher_map >= 0.1
        j.record('1 teacher', res, ok,
                 f'val bbox mAP {teacher_map} after {args.teacher_epochs} epochs '
                 f'({args.teacher_epochs * (args.num_train // 2)} iterations) from scratch; the '
                 f'config given to --teacher keeps init_cfg={dict(init) if init else init}',
                 bbox_mAP=teacher_map, teacher_init_cfg_in_config=dict(init) if init else None)
    teacher = ['--teacher', teacher_cfg, teacher_ckpt]

    # 2. one-flag students -------------------------------------------------------------------
    def student(name, step, config, extra=(), metric_key='coco/bbox_mAP', required=True,
                expect_refusal=False, iters=args.student_iters):
        wd = osp.join(wrel, name)
        res = j.run(step.replace(' ', '_'),
                    [py, 'tools/train.py', config, *teacher, *extra, '--work-dir', wd])
        if expect_refusal:
            ok, line = one_line_refusal(res)
            j.record(step, res, ok, f'refused, one line: {line}' if ok else
                     f'NOT refused as expected (rc {res["rc"]}): {line}', required=required,
                     refusal=line)
            return res
        outcome, nums = train_outcome(res, metric_key)
        ckpt = osp.join(REPO, wd, f'iter_{iters}.pth')
        ok = res['rc'] == 0 and osp.isfile(ckpt) and nums['teacher_check'] is not None and \
            bool(nums['loss_mimic'])
        j.record(step, res, ok, f'{iters} iterations; ' + outcome, required=required, **nums)
        return res

    student('r18_fpn', '2a R-18 FPN', cfg['r18_fpn'])
    student('r18_fpn_p2', '2b R-18 FPN P2', cfg['r18_fpn'],
            ['--mimic-student-feature', '0', '--mimic-teacher-feature', '0'])
    student('c4_caffe', '2c C4 as shipped', cfg['c4'], ['--mimic-teacher-feature', '2'],
            expect_refusal=True, required=False)
    student('c4_stride', '2d C4 default maps', cfg['c4_norm'], expect_refusal=True,
            required=False)
    student('c4', '2e R-50-C4', cfg['c4_norm'], ['--mimic-teacher-feature', '2'],
            iters=args.c4_iters)
    student('cascade', '2f Cascade R-18', cfg['cascade'])
    student('rpn', '2g RPN-only R-18', cfg['rpn'],
            metric_key='proposal/recall@100_iou50')
    student('retinanet', '2h RetinaNet', cfg['retinanet'])

    # 3. Ctrl-C and --resume -----------------------------------------------------------------
    half, n = args.student_iters // 2, args.student_iters
    wd = osp.join(wrel, 'r18_fpn_resumed')
    last = osp.join(REPO, wd, 'last_checkpoint')

    def ctrl_c(proc):
        while proc.poll() is None:
            if osp.isfile(last):
                with open(last) as fh:
                    if fh.read().strip().endswith(f'iter_{half}.pth'):
                        time.sleep(1.0)  # the user is not that quick
                        os.killpg(proc.pid, signal.SIGINT)
                        return time.perf_counter()
            time.sleep(0.2)
        return None

    argv = [py, 'tools/train.py', cfg['r18_fpn'], *teacher, '--work-dir', wd]
    res = j.run('3_interrupted', argv, interrupt=ctrl_c)
    reached = re.findall(r'Iter\(train\) \[\s*(\d+)/', res['stdout'])
    ok = res['interrupted_at'] is not None and res['rc'] != 0 and \
        not osp.isfile(osp.join(REPO, wd, f'iter_{n}.pth'))
    j.record('3a Ctrl-C', res, ok,
             f'SIGINT after iter_{half}.pth was written (last logged iteration '
             f'{reached[-1] if reached else "?"}), rc {res["rc"]}', required=True)
    res = j.run('3_resume', argv + ['--resume'])
    straight = osp.join(REPO, wrel, 'r18_fpn', f'iter_{n}.pth')
    resumed = osp.join(REPO, wd, f'iter_{n}.pth')
    cmp = None
    if res['rc'] == 0 and osp.isfile(straight) and osp.isfile(resumed):
        cmp = compare_checkpoints(straight, resumed)
    v = teacher_verdict(res['stdout'])
    if cmp:
        sd, op = cmp['state_dict'], cmp['optimizer']
        ok = sd['identical'] == sd['total'] == sd['other_total'] and \
            op['identical'] == op['total'] == op['other_total'] and cmp['param_groups_equal']
        outcome = (f'iter_{n}.pth vs the straight run (2a): state_dict {sd["identical"]}/'
                   f'{sd["total"]} tensors bit-identical, optimizer {op["identical"]}/'
                   f'{op["total"]}, param_groups equal: {cmp["param_groups_equal"]}; '
                   + verdict_text(v))
    else:
        ok, outcome = False, f'no comparison (rc {res["rc"]}): ' + ' '.join(
            error_lines(res['stderr'])[-1:])
    j.record('3b --resume', res, ok, outcome, comparison=cmp, teacher_check=v)

    # 4. extract, then mmdet's own tools/test.py ---------------------------------------------
    s_dir = osp.join(wrel, 'r18_fpn')
    ex_dir = osp.join(wrel, 'extracted_r18_fpn')
    res = j.run('4_extract', [py, 'tools/model_converters/extract_student.py',
                              osp.join(s_dir, osp.basename(cfg['r18_fpn'])),
                              osp.join(s_dir, f'iter_{n}.pth'), ex_dir])
    ex_cfg, ex_pth = osp.join(ex_dir, 'student.py'), osp.join(ex_dir, 'student.pth')
    imports = None
    if res['rc'] == 0:
        with open(osp.join(REPO, ex_cfg)) as fh:
            text = fh.read()
        imports = 'custom_imports' in text
        hooks = [h for h in ('TeacherCheckHook', 'RNGStateHook', 'FeatureMimicDistiller')
                 if h in text]
    j.record('4a extract', res, res['rc'] == 0 and imports is not None,
             f'plain mmdet config: custom_imports {"present" if imports else "absent"}, '
             f'mmmimic names in it: {hooks if res["rc"] == 0 else "?"}',
             custom_imports=imports)
    res = j.run('4_mmdet_test', [py, '-X', 'importtime', osp.join(rel(mmdet_tools), 'test.py'),
                                 ex_cfg, ex_pth, '--work-dir', osp.join(wrel, 'test_r18_fpn')])
    test_map = last_float(r'coco/bbox_mAP: ([-\d.]+)', res['stdout'])
    imported = sorted({ln.split('|')[-1].strip().split('.')[0] for ln in
                       res['stderr'].splitlines() if ln.startswith('import time:') and
                       ln.split('|')[-1].strip().startswith('mmmimic')})
    train_map = next((s['numbers'].get('value') for s in j.steps if s['step'] == '2a R-18 FPN'),
                     None)
    ok = res['rc'] == 0 and (not imported or imports)
    shown = 'none: no detection above the score threshold' if test_map is None and \
        'results of the whole dataset is empty' in res['stdout'] else test_map
    j.record('4b mmdet test.py', res, ok,
             f'bbox mAP {shown} (the distiller\'s own val at iteration {n}: {train_map}); '
             f'mmmimic imported: {"yes" if imported else "no"}', bbox_mAP=test_map,
             distiller_val_bbox_mAP=train_map, mmmimic_imported=bool(imported))

    # 5. two processes -----------------------------------------------------------------------
    port = free_port()
    res = j.run('5_dist_train', ['bash', 'tools/dist_train.sh', cfg['r18_fpn'], '2', *teacher,
                                 '--work-dir', osp.join(wrel, 'dist'), '--cfg-options',
                                 f'train_cfg.max_iters={args.dist_iters}',
                                 f'train_cfg.val_interval={args.dist_iters}',
                                 f'default_hooks.checkpoint.interval={args.dist_iters}'],
                env_prefix=f'PORT={port}')
    v = teacher_verdict(res['stdout'] + res['stderr'])
    one = next((s['numbers'].get('teacher_check') for s in j.steps
                if s['step'] == '2a R-18 FPN'), None)
    ckpt_ok = osp.isfile(osp.join(REPO, wrel, 'dist', f'iter_{args.dist_iters}.pth'))
    same = bool(v and one and v['teacher'] == one['teacher'] and v['images'] == one['images'])
    j.record('5 dist_train.sh x2', res, res['rc'] == 0 and ckpt_ok and v is not None,
             f'{args.dist_iters} iterations, 2 processes (gloo); {verdict_text(v)} '
             f'(1 process, 2a: {one["teacher"] if one else "?"}; equal: {same})',
             teacher_check=v, teacher_check_equal_to_one_process=same)

    # 6. ONNX (optional) ---------------------------------------------------------------------
    if not args.skip_onnx:
        onnx_dir = osp.join(wrel, 'onnx')
        os.makedirs(osp.join(REPO, onnx_dir), exist_ok=True)
        res = j.run('6_onnx_fpn', [py, 'tools/deployment/export_onnx.py', ex_cfg, ex_pth,
                                   '--out', osp.join(onnx_dir, 'r18_fpn.onnx')])
        if res['rc'] == 0:
            j.record('6a ONNX R-18 FPN', res, True, 'exported', required=False)
        else:
            ok, line = one_line_refusal(res)
            j.record('6a ONNX R-18 FPN', res, False, f'refused (rc {res["rc"]}): {line}',
                     required=False, refusal=line)
        r_dir, rx_dir = osp.join(wrel, 'rpn'), osp.join(wrel, 'extracted_rpn')
        res = j.run('6_extract_rpn', [py, 'tools/model_converters/extract_student.py',
                                      osp.join(r_dir, osp.basename(cfg['rpn'])),
                                      osp.join(r_dir, f'iter_{n}.pth'), rx_dir])
        j.record('6b extract RPN', res, res['rc'] == 0, 'extracted' if res['rc'] == 0 else
                 one_line_refusal(res)[1], required=False)
        rx_cfg, rx_pth = osp.join(rx_dir, 'student.py'), osp.join(rx_dir, 'student.pth')
        onnx = osp.join(onnx_dir, 'rpn.onnx')
        res = j.run('6_onnx_rpn', [py, 'tools/deployment/export_onnx.py', rx_cfg, rx_pth,
                                   '--out', onnx])
        j.record('6c ONNX RPN export', res, res['rc'] == 0, 'exported' if res['rc'] == 0 else
                 one_line_refusal(res)[1], required=False)
        key = 'proposal/recall@100_iou50'
        vals = {}
        for what, model in (('pth', rx_pth), ('onnx', onnx)):
            res = j.run(f'6_test_rpn_{what}', [py, 'tools/test.py', rx_cfg, model,
                                               '--work-dir', osp.join(wrel, f'test_rpn_{what}')])
            vals[what] = last_float(rf'{re.escape(key)}: ([-\d.]+)', res['stdout'])
            j.record(f'6{"d" if what == "pth" else "e"} test RPN {what}', res,
                     res['rc'] == 0 and vals[what] is not None,
                     f'{key} {vals[what]}' + ('' if what == 'pth' else
                                              f' (PyTorch: {vals["pth"]})'),
                     required=False, value=vals[what])

    # report ----------------------------------------------------------------------------------
    total = time.perf_counter() - t_start
    failed = [s['step'] for s in j.steps if s['required'] and not s['ok']]
    info = dict(date=datetime.datetime.now().isoformat(timespec='seconds'),
                host=platform.node(), cpus=os.cpu_count(), python=platform.python_version(),
                total_seconds=round(total, 1), work_dir=wrel, failed_required=failed,
                args=vars(args), configs=cfg)
    try:
        import mmdet
        import mmengine
        import torch
        info.update(torch=torch.__version__, mmdet=mmdet.__version__, mmengine=mmengine.__version__)
    except ImportError:
        pass
    try:
        info['load_average_at_end'] = os.getloadavg()
    except OSError:
        pass
    lines = [
        '# The one-flag journey (issue #25), mmdet 3.3 configs, tiny COCO data', '',
        f'`python benchmarks/one_flag_journey.py` ({info["date"]}, {info["cpus"]} CPU cores, '
        f'torch {info.get("torch")}, mmdet {info.get("mmdet")}, no GPU; load average at the end '
        f'{", ".join(f"{x:.1f}" for x in info.get("load_average_at_end", ()))}). Every command '
        f'ran from the repository root, `python` being the venv\'s; the user configs are in '
        f'`{wrel}/configs/`, the logs in `{wrel}/logs/`. Total {total / 60:.1f} min.', '']
    cells = []
    for s in j.steps:
        mark = '' if s['ok'] else (' **FAILED**' if s['required'] else ' (not passed, optional)')
        cmd = s['command'].replace('|', '\\|')
        secs = '-' if s['seconds'] is None else s['seconds']
        outcome = s['outcome'].replace('|', '\\|')
        cells.append([s['step'], f'`{cmd}`', secs, f'{outcome}{mark}'])
    lines.append(markdown_table(cells, ['step', 'command', 'wall s', 'outcome'],
                                align=['left', 'left', 'right', 'left']))
    lines += ['', f'Steps that must pass and failed: {", ".join(failed) if failed else "none"}.',
              '']
    atomic_write_text(json_path, json.dumps(dict(info=info, steps=j.steps), indent=1) + '\n',
                      overwrite=args.overwrite)
    atomic_write_text(md_path, '\n'.join(lines), overwrite=args.overwrite)
    print(f'\nwrote {md_path} and {json_path}; total {total:.0f} s; '
          f'failed: {failed or "none"}', flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
