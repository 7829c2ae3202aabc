"""The main job on built-in real data: does feature mimic help where the teacher knows more?

One command builds the pedestrian benchmark from OpenCV's sample video ``vtest.avi`` (classical,
model-independent labels, written as a Caltech-format release and converted with the same
converter a Caltech user runs), then

1. trains the teacher, the full-width Inception RPN on the full-size 640x480 frames (``--teacher``
   picks another candidate; ``benchmarks/vtest_teacher_sweep.py`` compares them on validation),
   validating every few hundred iterations and keeping the checkpoint with the best validation
   MR-2;
2. fills the teacher-feature cache (the teacher's map of every training frame and flip), so a
   mimic run costs about what a scratch run costs;
3. per seed, trains the students of each block from paired initial weights (the same seed, data
   order and initial weights for mimic and scratch):

   * cross-scale (the headline, paper Sec. 3.5 / Table 10): 1/2- and 1/4-Inception students at
     half the teacher's input, with feature mimic + deconv, from scratch with the deconv, and from
     scratch without it;
   * same-input (Tables 5/7, default preset): the students at the teacher's input;
   * stage 2 (Tables 6/9, default preset): 1/2-Inception R-FCNs fine-tuned from the stage-1 mimic
     and scratch RPNs, and two-stage mimic of an R-FCN teacher;

4. scores every model on every frame of the test split (official Caltech MR-2/MR-4, AP at IoU
   0.5, proposal recall) and the teacher and scratch students on the validation split (the
   precondition: is the teacher better?), times every model at its own input, and writes
   ``report.md``, ``results.json``, ``mr_fppi.png`` and ``speed/`` into the output folder, with
   paired differences, t-intervals over seeds and bootstrap intervals over test frames.

Every stage prints its ETA; finished stages are reused and an interrupted training resumes from
its last checkpoint (``--force NAME`` redoes a model). A stage whose config changed since it ran
(another teacher, schedule or data) stops the run and names it.

Examples::

    python tools/mimic_demo.py --quick     # 3 seeds, stage 1 (cross-scale block)
    python tools/mimic_demo.py             # 5 seeds, every block, stage 2

These are NOT Caltech numbers: one static campus scene, labels from a classical procedure
(docs/vtest_labels.md).
"""
import argparse
import copy
import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmmimic.benchmark import (BY_NAME, COMPARISONS, MODELS, PRESETS, SPLIT_LISTS,  # noqa: E402
                               TEACHER_CANDIDATES, TEST_SET, VAL_EVALUATOR, BenchmarkModel,
                               models_of, speed_config, speed_configs, student_init_state,
                               vtest_train_config)
from mmmimic.datasets.caltech_converter import convert_caltech  # noqa: E402
from mmmimic.fileio import atomic_write_text, check_output_path  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: the teacher must beat the scratch students on validation MR-2 by this much (points) for the
#: run to test the paper's claim
PRECONDITION_POINTS = 5.0
MR2, MR4 = 'caltech/Reasonable_MR-2', 'caltech/Reasonable_MR-4'
AP50 = 'caltech/Reasonable_AP50'


def log(msg: str) -> None:
    print(f'[mimic_demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run_tool(args: Sequence[str]) -> None:
    cmd = [sys.executable, *args]
    log('$ ' + ' '.join(cmd))
    subprocess.run(cmd, check=True, cwd=ROOT)


class StageError(RuntimeError):
    """A finished stage that does not fit this run (another config) or a stage that failed."""


# ----------------------------------------------------------------------------- ETA
class Eta:
    """Stage time estimates from this output folder's measured times (``timings.json``): seconds
    per training iteration per model, seconds per evaluation; unmeasured models borrow the
    nearest measured one of their block, else a conservative default."""
    DEFAULT_S_PER_IT = {'teacher': 1.0, 'cross-scale': 0.25, 'same-input': 0.6, 'stage2': 0.5}

    def __init__(self, path: str) -> None:
        self.path = path
        self.data = self.on_disk()

    def on_disk(self) -> Dict[str, float]:
        if not osp.isfile(self.path):
            return {}
        with open(self.path) as f:
            return json.load(f)

    def record(self, key: str, value: float) -> None:
        # merged into what is on disk (a sweep and the main job may share the output folder)
        # and written whole (a reader never sees half a file)
        self.data = {**self.on_disk(), **self.data, key: value}
        tmp = f'{self.path}.{os.getpid()}.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, self.path)

    def train_s(self, m: BenchmarkModel, iters: int) -> float:
        per_it = self.data.get(f'train/{m.name}')
        if per_it is None:
            same_block = [v for k, v in self.data.items()
                          if k.startswith('train/') and BY_NAME.get(k[6:]) is not None
                          and BY_NAME[k[6:]].block == m.block]
            per_it = max(same_block) if same_block else self.DEFAULT_S_PER_IT[m.block]
        return per_it * iters

    def eval_s(self, m: BenchmarkModel) -> float:
        return self.data.get(f'eval/{m.name}', self.data.get('eval/teacher', 30.0))


def fmt_min(seconds: float) -> str:
    return f'{seconds / 60:.1f} min'


# ----------------------------------------------------------------------------- the run
class MainJob:
    """The stages of one benchmark run (see the module docstring)."""

    def __init__(self, args, models: Optional[Sequence[BenchmarkModel]] = None,
                 root: Optional[str] = None,
                 mimic_weights: Optional[Dict[str, float]] = None) -> None:
        """``models`` (default: the blocks' models), ``root`` (where the per-seed runs go;
        default ``args.out``; teachers and the cache stay in ``args.out``) and per-model mimic
        weights (over ``args.mimic_weights``, then ``args.mimic_weight``) let a validation sweep
        reuse the stages."""
        self.args = args
        self.models = list(models) if models is not None else \
            models_of(args.blocks, args.teacher)
        self.root = root or args.out
        self.mimic_weights = {**getattr(args, 'mimic_weights', {}), **(mimic_weights or {})}
        self.names = [m.name for m in self.models]
        self.eta = Eta(osp.join(args.out, 'timings.json'))
        self.ckpts: Dict[str, str] = {}  # '<name>@<seed>' -> trained checkpoint
        self.done = 0
        self.stage_times: Dict[str, float] = {}

    # --------------------------------------------------------------- bookkeeping
    @staticmethod
    def is_rpn_teacher(m: BenchmarkModel) -> bool:
        """The RPN teacher (or a candidate of a teacher sweep): validated while it trains, its
        checkpoint chosen on validation; the R-FCN teacher is fine-tuned from it instead."""
        return m.block == 'teacher' and m.init_from is None

    def iters_of(self, m: BenchmarkModel) -> int:
        if self.is_rpn_teacher(m):
            return self.args.teacher_iters
        if m.block == 'stage2' or m.name == 'teacher-rfcn':
            return self.args.stage2_iters
        return self.args.iters

    def seeds_of(self, m: BenchmarkModel) -> List[int]:
        return list(self.args.seeds) if m.seeded else [self.args.seeds[0]]

    @property
    def teacher(self) -> BenchmarkModel:
        """The RPN teacher of this run (the first, in a teacher sweep)."""
        return next((m for m in self.models if self.is_rpn_teacher(m)), BY_NAME['teacher'])

    def depends_on_teacher(self, m: BenchmarkModel) -> bool:
        """Whether ``m``'s training reads the RPN teacher: the teacher itself, the mimic
        students, the R-FCN teacher and the stage-2 models fine-tuned from a mimic student."""
        return self.is_rpn_teacher(m) or any(
            dep is not None and self.depends_on_teacher(BY_NAME[dep])
            for dep in (m.teacher, m.init_from))

    def run_name(self, m: BenchmarkModel) -> str:
        """The folder name of ``m``'s runs and result files. A model that depends on a teacher
        candidate other than ``full`` carries that candidate's folder as a suffix
        (``xs-mimic-1-2_teacher-jitter``), so one output folder keeps the runs of every teacher
        and its scratch students serve them all."""
        name = m.run_dir or m.name
        suffix = self.teacher.run_dir
        if suffix and not self.is_rpn_teacher(m) and self.depends_on_teacher(m):
            return f'{name}_{suffix}'
        return name

    def work_dir(self, m: BenchmarkModel, seed: int) -> str:
        if m.seeded:
            return osp.join(self.root, f'seed{seed}', self.run_name(m))
        return osp.join(self.args.out, 'shared', self.run_name(m))

    def plan(self) -> List[tuple]:
        """Every stage in order: ``(kind, model, seed)``; kind: train / cache / eval."""
        stages = []
        for m in self.models:
            if not m.seeded:
                stages.append(('train', m, self.args.seeds[0]))
        if self.use_cache:
            stages.append(('cache', None, None))
        for seed in self.args.seeds:
            stages += [('train', m, seed) for m in self.models if m.seeded]
        for m in self.models:
            for seed in self.seeds_of(m):
                stages.append(('eval', m, seed))
        return stages

    def reads_cache(self, m: BenchmarkModel) -> bool:
        """Whether ``m`` trains from the teacher-feature cache (stage-1 mimic students; the
        cache holds the RPN teacher's map only)."""
        return not self.args.no_cache and m.mimic and m.block in ('cross-scale', 'same-input')

    @property
    def use_cache(self) -> bool:
        return any(self.reads_cache(m) for m in self.models)

    @staticmethod
    def scored_on_val(m: BenchmarkModel) -> bool:
        """The precondition's models (the teacher, the scratch students of stage 1) are scored
        on the validation split too."""
        return not m.mimic and m.block in ('teacher', 'cross-scale', 'same-input') \
            and m.name != 'teacher-rfcn'

    def stage_done(self, kind: str, m: Optional[BenchmarkModel], seed: Optional[int]) -> bool:
        """Whether a train / eval stage finished in an earlier run and will be reused (the
        ETA leaves it out; the stage itself still checks its config stamp)."""
        if kind == 'cache':  # a finished fill (the stage still checks the cache's identity)
            from mmmimic.teacher_cache import cache_marked_complete
            return cache_marked_complete(self.cache_cfg()['dir'])
        if m.name in self.args.force:
            return False
        work_dir = self.work_dir(m, seed)
        final = self.trained_ckpt(m, work_dir)
        if final is None or kind == 'train':
            return final is not None
        if self.args.force_eval:
            return False
        try:
            return all(self.saved_metrics(work_dir, split, final) is not None
                       for split in (('test', 'val') if self.scored_on_val(m) else ('test', )))
        except (ValueError, KeyError):  # an unreadable metrics file: the stage will say so
            return False

    def trained_ckpt(self, m: BenchmarkModel, work_dir: str) -> Optional[str]:
        """The final checkpoint of a training that finished in ``work_dir`` (its time
        recorded), else None."""
        final = self.final_ckpt(m, work_dir)
        if final is not None and osp.isfile(osp.join(work_dir, 'train_time.json')):
            return final
        return None

    @staticmethod
    def saved_metrics(work_dir: str, split: str, ckpt: str) -> Optional[Dict[str, float]]:
        """The metrics an earlier run saved for ``ckpt`` on ``split``, else None."""
        out_json = osp.join(work_dir, f'{split}_metrics.json')
        if not osp.isfile(out_json):
            return None
        saved = json.load(open(out_json))
        return saved['metrics'] if saved.get('checkpoint') == ckpt else None

    def remaining_s(self, stages: Sequence[tuple]) -> float:
        total = 0.0
        for kind, m, seed in stages:
            if self.stage_done(kind, m, seed):
                continue
            if kind == 'train':
                total += self.eta.train_s(m, self.iters_of(m))
            elif kind == 'eval':
                total += self.eta.eval_s(m)
            else:
                total += self.eta.data.get('cache', 120.0)
        return total

    def announce(self, stages: Sequence[tuple], i: int, what: str) -> None:
        rest = self.remaining_s(stages[i:])
        if self.stage_done(*stages[i]):
            log(f'stage {i + 1}/{len(stages)}: {what} (finished before: reused; all remaining '
                f'stages ~{fmt_min(rest)})')
            return
        this = self.remaining_s(stages[i:i + 1])
        log(f'stage {i + 1}/{len(stages)}: {what} (ETA {fmt_min(this)}; all remaining stages '
            f'~{fmt_min(rest)})')

    # --------------------------------------------------------------- configs
    def cache_cfg(self) -> dict:
        # one cache per teacher candidate (the full-size teacher's keeps the plain name)
        run_dir = self.teacher.run_dir
        name = 'teacher_cache' if run_dir is None else f'teacher_cache_{run_dir}'
        return dict(dir=osp.join(self.args.out, name), dtype='float16',
                    max_gb=self.args.cache_max_gb, verify=2, missing='error')

    def config_of(self, m: BenchmarkModel, seed: int, for_training: bool = True):
        args = self.args
        teacher_ckpt = self.ckpts[f'{m.teacher}@{args.seeds[0]}'] if m.mimic else None
        stage1 = None
        if m.init_from:
            src = BY_NAME[m.init_from]
            stage1 = self.ckpts[f'{src.name}@{seed if src.seeded else args.seeds[0]}']
        init = self.init_ckpt(m, seed) if (m.init_group and for_training) else None
        cache = self.cache_cfg() if for_training and self.reads_cache(m) else None
        cfg = vtest_train_config(
            m.config, args.data_dir, seed, self.work_dir(m, seed), self.iters_of(m),
            args.workers, teacher_ckpt=teacher_ckpt,
            val_interval=args.teacher_val_interval if self.is_rpn_teacher(m) else None,
            init_ckpt=init, stage1_ckpt=stage1,
            mimic_weight=self.weight_of(m) if m.mimic else None,
            teacher_cache=cache)
        return cfg

    def weight_of(self, m: BenchmarkModel) -> float:
        """The mimic loss weight (lambda1) mimic model ``m`` trains with."""
        return self.mimic_weights.get(m.name, self.args.mimic_weight)

    def init_ckpt(self, m: BenchmarkModel, seed: int) -> str:
        """The paired initial weights of ``m`` for ``seed`` (written on first use): the group's
        scratch network initialised under ``torch.manual_seed(seed)``; a mimic student gets it
        under ``student.``, the control without the deconv everything but the neck."""
        import torch
        path = osp.join(self.root, f'seed{seed}', 'init', f'{m.name}.pth')
        if osp.isfile(path):
            return path
        # the group's full network: the one its mimic student trains (and is timed as)
        base = next(speed_config(g) for g in self.models
                    if g.init_group == m.init_group and g.mimic)
        from mmengine.config import Config
        state = student_init_state(Config.fromfile(osp.join(ROOT, base)).model, seed)
        if m.mimic:
            state = {f'student.{k}': v for k, v in state.items()}
        elif m.config != base:
            state = {k: v for k, v in state.items() if not k.startswith('neck.')}
        os.makedirs(osp.dirname(path), exist_ok=True)
        torch.save(dict(state_dict=state, meta=dict(init_group=m.init_group, seed=seed,
                                                    source=base)), path + '.tmp')
        os.replace(path + '.tmp', path)
        return path

    # --------------------------------------------------------------- stages
    def check_stamp(self, work_dir: str, cfg, name: str) -> bool:
        """Whether ``work_dir`` holds a run of exactly this config (True), none (False); a run
        of another config stops the job naming it."""
        digest = hashlib.sha256(cfg.pretty_text.encode()).hexdigest()
        stamp = osp.join(work_dir, 'stage.json')
        if osp.isfile(stamp):
            old = json.load(open(stamp)).get('config_sha256')
            if old != digest:
                raise StageError(
                    f'{work_dir} holds a {name} run of another config (another teacher, '
                    f'schedule, data dir or preset: config sha256 {old[:12]} vs {digest[:12]} '
                    f'now; the old config is {osp.join(work_dir, "stage_config.py")}); pass '
                    f'--force {name} to retrain it, or --out for a separate run')
            return True
        os.makedirs(work_dir, exist_ok=True)
        cfg.dump(osp.join(work_dir, 'stage_config.py'))
        with open(stamp, 'w') as f:
            json.dump(dict(config_sha256=digest), f)
        return False

    def final_ckpt(self, m: BenchmarkModel, work_dir: str) -> Optional[str]:
        if self.is_rpn_teacher(m):
            best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
            return best[-1] if best else None
        path = osp.join(work_dir, f'iter_{self.iters_of(m)}.pth')
        return path if osp.isfile(path) else None

    def train(self, m: BenchmarkModel, seed: int) -> str:
        from mmengine.runner import Runner
        work_dir = self.work_dir(m, seed)
        if m.name in self.args.force and osp.isdir(work_dir) and \
                f'{m.name}@{seed}' not in self.stage_times:
            shutil.rmtree(work_dir)
        cfg = self.config_of(m, seed)
        started = self.check_stamp(work_dir, cfg, m.name)
        final = self.trained_ckpt(m, work_dir) if started else None
        if final is not None:
            log(f'{m.name} (seed {seed}): reusing {final}')
            self.ckpts[f'{m.name}@{seed}'] = final
            return final
        cfg.resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))  # interrupted run
        if cfg.resume:
            log(f'{m.name} (seed {seed}): resuming the interrupted run in {work_dir}')
        t0 = time.time()
        Runner.from_cfg(cfg).train()
        seconds = time.time() - t0
        final = self.final_ckpt(m, work_dir)
        if final is None:
            raise StageError(f'{m.name} (seed {seed}) finished without its checkpoint in '
                             f'{work_dir}')
        with open(osp.join(work_dir, 'train_time.json'), 'w') as f:
            json.dump(dict(seconds=seconds, resumed=bool(cfg.resume)), f)
        if not cfg.resume:
            self.eta.record(f'train/{m.name}', seconds / self.iters_of(m))
        self.stage_times[f'{m.name}@{seed}'] = seconds
        self.ckpts[f'{m.name}@{seed}'] = final
        return final

    def fill_cache(self) -> dict:
        from mmmimic.teacher_cache import fill_cache_from_config
        mimic = next(m for m in self.models if self.reads_cache(m))
        cfg = self.config_of(mimic, self.args.seeds[0])
        t0 = time.time()
        stats = fill_cache_from_config(cfg, progress=True, log=log)
        if stats.get('written', 0):
            self.eta.record('cache', time.time() - t0)
        return stats

    def evaluate(self, m: BenchmarkModel, seed: int, split: str) -> Dict[str, float]:
        """Score ``m`` on every frame of ``split`` (test: result files saved for the report)."""
        from mmengine.runner import Runner

        from mmmimic.models.dense_heads import use_fast_exact_rpn
        work_dir = self.work_dir(m, seed)
        out_json = osp.join(work_dir, f'{split}_metrics.json')
        ckpt = self.ckpts[f'{m.name}@{seed}']
        saved = None if self.args.force_eval else self.saved_metrics(work_dir, split, ckpt)
        if saved is not None:
            return saved
        cfg = self.config_of(m, seed, for_training=False)
        # the same detections bit for bit, the RPN's predict step from its best 500 (then 1000)
        # anchors per level where that provably equals the full step (benchmarks/fast_rpn_head.py)
        use_fast_exact_rpn(cfg.model)
        cfg.test_dataloader.dataset.ann_file = SPLIT_LISTS[split]
        if split == 'test':
            for ev in cfg.test_evaluator:
                if ev['type'] == 'CaltechMRMetric':
                    ev.update(save_result_files=True, algorithm=self.run_name(m),
                              outfile_prefix=self.results_root(m, seed))
        else:
            cfg.test_evaluator = copy.deepcopy(VAL_EVALUATOR)
        cfg.load_from = ckpt
        cfg.resume = False
        cfg.experiment_name += f'_{split}'
        cfg.visualizer.name += f'_{split}'
        log(f'scoring {m.name} (seed {seed}) on the {split} split')
        t0 = time.time()
        metrics = {k: float(v) for k, v in Runner.from_cfg(cfg).test().items()}
        if split == 'test':
            self.eta.record(f'eval/{m.name}', time.time() - t0)
        with open(out_json, 'w') as f:
            json.dump(dict(checkpoint=ckpt, metrics=metrics), f, indent=1)
        return metrics

    def results_root(self, m: BenchmarkModel, seed: int) -> str:
        return osp.join(osp.dirname(self.work_dir(m, seed)), 'results')

    def result_dir(self, m: BenchmarkModel, seed: int) -> str:
        return osp.join(self.results_root(m, seed), 'res', self.run_name(m))

    # --------------------------------------------------------------- main
    def run(self) -> Dict:
        args = self.args
        stages = self.plan()
        results: Dict[str, Dict[int, Dict[str, float]]] = {}
        val: Dict[str, Dict[int, Dict[str, float]]] = {}
        for i, (kind, m, seed) in enumerate(stages):
            if kind == 'cache':
                self.announce(stages, i, 'teacher-feature cache')
                self.fill_cache()
            elif kind == 'train':
                self.announce(stages, i, f'train {m.name} (seed {seed}, {self.iters_of(m)} '
                              'iterations)')
                self.train(m, seed)
            else:
                self.announce(stages, i, f'score {m.name} (seed {seed})')
                results.setdefault(m.name, {})[seed] = self.evaluate(m, seed, 'test')
                if self.scored_on_val(m):
                    val.setdefault(m.name, {})[seed] = self.evaluate(m, seed, 'val')
        speed = {} if args.skip_speed else measure_speed(args, self.models)
        return dict(results=results, val=val, speed=speed)


# ----------------------------------------------------------------------------- data
def prepare_data(args) -> str:
    """Build the vtest Caltech-format release (cached; rebuilt when the labeller changed) and
    convert it into ``args.data_dir`` (re-converted when the release changed)."""
    release = osp.join(args.out, 'vtest_release')
    build = ['tools/dataset_converters/build_vtest.py', '--out', release]
    if args.video:
        build += ['--video', args.video]
    if args.gap is not None:
        build += ['--gap', str(args.gap)]
    if args.force_data:
        build.append('--force')
    try:
        run_tool(build)
    except subprocess.CalledProcessError as err:
        raise StageError(f'building the vtest release from {args.video or "vtest.avi"} failed '
                         f'(exit {err.returncode}; the builder\'s message is above)') from err
    if args.force_data and osp.isdir(args.data_dir):
        shutil.rmtree(args.data_dir)
    convert_caltech(release, args.data_dir, presets=('vtest_train', 'vtest_val', 'vtest_test'),
                    progress=True)
    for split in ('vtest_train.txt', *SPLIT_LISTS.values()):
        path = osp.join(args.data_dir, split)
        if not osp.isfile(path) or not open(path).read().strip():
            raise StageError(f'{path} is missing or empty after converting {release}')
    return release


# ----------------------------------------------------------------------------- speed
def measure_speed(args, models: Sequence[BenchmarkModel]) -> Dict[str, Dict[str, float]]:
    """Params, FLOPs and CPU latency at the full frame size (``--speed-shape``), every model at
    its own input (half-input students resize inside the model), speed-ups over the teacher of
    the same kind (RPN students over the RPN teacher, R-FCNs over the R-FCN teacher)."""
    out_dir = osp.join(args.out, 'speed')
    out_json = osp.join(out_dir, 'speed.json')
    configs = speed_configs(models)
    if osp.isfile(out_json) and not args.force_speed:
        saved = json.load(open(out_json))
        if saved.get('configs') == configs:
            return saved['models']
    run_tool(['tools/analysis_tools/benchmark_speed.py', *configs, '--shapes', args.speed_shape,
              '--runs', str(args.speed_runs), '--warmup', '1', '--out-dir', out_dir])
    import csv
    with open(osp.join(out_dir, 'speed.csv')) as f:
        rows = list(csv.DictReader(f))
    by_config = dict(zip(configs, rows))  # rows are in the order of the configs given
    shape = args.speed_shape
    names = {m.name for m in models}
    speed = {}
    for m in models:
        row = {k: _num(v) for k, v in by_config[speed_config(m)].items()}
        ref_name = ('teacher-rfcn' if 'rfcn' in m.config and 'teacher-rfcn' in names
                    else 'teacher')
        ref = {k: _num(v) for k, v in by_config[speed_config(BY_NAME[ref_name])].items()}
        speed[m.name] = dict(params_m=row['params_M'], gflops=row.get(f'GFLOPs@{shape}'),
                             latency_ms=row[f'ms@{shape}'], reference=ref_name,
                             speedup=ref[f'ms@{shape}'] / row[f'ms@{shape}'])
    with open(out_json, 'w') as f:
        json.dump(dict(configs=configs, models=speed), f, indent=1)
    return speed


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


# ----------------------------------------------------------------------------- report
def frame_records(job: MainJob) -> Dict[str, Dict[int, object]]:
    """Every test result folder evaluated per frame once (for the frame bootstrap)."""
    from mmmimic.benchmark import load_frame_records
    keys, dirs = [], []
    for m in job.models:
        for seed in job.seeds_of(m):
            keys.append((m.name, seed))
            dirs.append(job.result_dir(m, seed))
    data_dir = job.args.data_dir
    records = load_frame_records(dirs, osp.join(data_dir, 'annotations'), setting='Reasonable',
                                 sets=(TEST_SET, ), img_list=osp.join(data_dir,
                                                                      SPLIT_LISTS['test']))
    out: Dict[str, Dict[int, object]] = {}
    for (name, seed), rec in zip(keys, records):
        out.setdefault(name, {})[seed] = rec
    return out


def check_offline_scores(job: MainJob, results: Dict, records: Dict) -> None:
    """The result files, re-scored offline frame by frame, must give the metric's MR-2."""
    for name, per_seed in records.items():
        for seed, rec in per_seed.items():
            online = results[name][seed][MR2]
            offline = rec.value('MR-2')
            if abs(offline - online) > 1e-6:
                raise StageError(f'{name} (seed {seed}): MR-2 re-scored from the result files '
                                 f'{offline} != CaltechMRMetric {online}')
    log('scoring the result files offline reproduces CaltechMRMetric for every model')


def stat(per_seed: Dict[int, Dict[str, float]], key: str) -> Optional[tuple]:
    vals = np.array([per_seed[s][key] for s in sorted(per_seed) if key in per_seed[s]], float)
    if not len(vals):
        return None
    return (float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
            vals.tolist())


def _fmt_stat(s, digits: int = 1) -> str:
    if s is None:
        return '-'
    mean, std, vals = s
    return f'{mean:.{digits}f} ± {std:.{digits}f}' if len(vals) > 1 else f'{mean:.{digits}f}'


def model_rows(job: MainJob, results: Dict, speed: Dict) -> List[Dict]:
    rows = []
    for m in job.models:
        per_seed = results[m.name]
        sp = speed.get(m.name, {})
        rows.append(dict(
            name=m.name, label=m.label, block=m.block, seeds=sorted(per_seed),
            params_m=sp.get('params_m'), speedup=sp.get('speedup'),
            speedup_over=sp.get('reference'), latency_ms=sp.get('latency_ms'),
            mr2=stat(per_seed, MR2), mr4=stat(per_seed, MR4), ap50=stat(per_seed, AP50),
            recall_05=stat(per_seed, 'proposal/recall@300_iou50'),
            recall_07=stat(per_seed, 'proposal/recall@300_iou70')))
    return rows


def table(rows: Sequence[Dict]) -> str:
    lines = ['| model | params (M) | speed-up | MR-2 (%) | MR-4 (%) | AP50 (%) | '
             'recall@300 IoU.5 (%) | recall@300 IoU.7 (%) |',
             '|---|---|---|---|---|---|---|---|']
    for r in rows:
        params = f'{r["params_m"]:.2f}' if isinstance(r['params_m'], float) else '-'
        speedup = f'{r["speedup"]:.2f}x' if isinstance(r['speedup'], float) else '-'
        lines.append(f'| {r["label"]} | {params} | {speedup} | {_fmt_stat(r["mr2"])} | '
                     f'{_fmt_stat(r["mr4"])} | {_fmt_stat(r["ap50"])} | '
                     f'{_fmt_stat(r["recall_05"])} | {_fmt_stat(r["recall_07"])} |')
    return '\n'.join(lines)


def precondition(job: MainJob, val: Dict) -> Dict:
    """Teacher vs scratch students on validation MR-2 (mean over seeds)."""
    teacher = val['teacher'][job.args.seeds[0]][MR2]
    students = {}
    for name, per_seed in val.items():
        if name == 'teacher' or name == 'teacher-rfcn':
            continue
        students[name] = float(np.mean([v[MR2] for v in per_seed.values()]))
    headline = [n for n in students if BY_NAME[n].block == 'cross-scale']
    margins = {n: students[n] - teacher for n in students}
    # None: the run has no cross-scale (headline) block to judge
    met = all(margins[n] >= PRECONDITION_POINTS for n in headline) if headline else None
    # the same-input block is judged student by student: a scratch student at the teacher's own
    # input can come close to the teacher, leaving that comparison nothing to test
    short = [n for n in students
             if BY_NAME[n].block == 'same-input' and margins[n] < PRECONDITION_POINTS]
    return dict(teacher_val_mr2=teacher, students_val_mr2=students, margins=margins, met=met,
                same_input_not_met=short)


def intervals(job: MainJob, results: Dict, records: Dict) -> List[Dict]:
    """Paired mimic-vs-control differences with t-intervals over seeds and frame-bootstrap
    intervals, and the share of the scratch-to-teacher gap closed."""
    from mmmimic.benchmark import bootstrap_paired, gap_closed, paired_difference
    out = []
    for block, width, mimic, scratch, other in COMPARISONS:
        if mimic not in results:
            continue
        for control in (scratch, other):
            if control is None or control not in results:
                continue
            a, b = mimic, control
            if control == other and block == 'stage2':  # two-stage mimic vs fine-tuning
                a, b = other, mimic
            row = dict(block=block, width=width, a=a, b=b)
            for key, metric in ((MR2, 'MR-2'), (AP50, 'AP')):
                diff = paired_difference({s: v[key] for s, v in results[a].items()},
                                         {s: v[key] for s, v in results[b].items()})
                boot = bootstrap_paired(records[a], records[b], metric=metric,
                                        n_boot=job.args.n_boot, block=job.args.boot_block)
                row[metric] = dict(seeds=diff.as_dict(), frames=boot.as_dict(),
                                   text=f'{diff.estimate:+.1f}; seeds {_iv(diff)}; frames '
                                        f'{_iv(boot)}')
            teacher = 'teacher-rfcn' if block == 'stage2' else 'teacher'
            if b == scratch and teacher in records:
                t_rec = records[teacher][job.args.seeds[0]]
                g = gap_closed(records[scratch], records[a], t_rec, n_boot=job.args.n_boot,
                               block=job.args.boot_block)
                row['gap_closed'] = dict(estimate=g.estimate, text=g.format(),
                                         seeds=g.seeds.as_dict() if g.seeds else None,
                                         frames=g.frames.as_dict() if g.frames else None,
                                         reason=g.reason)
            out.append(row)
    return out


def _iv(iv) -> str:
    return f'[{iv.lo:+.1f}, {iv.hi:+.1f}]' if iv.ok else f'({iv.note})'


def weights_text(job: MainJob) -> str:
    """The mimic weights of the run's mimic models, e.g. ``10 (xs-mimic-1-2, ...); 0.1
    (mimic-1-2)``."""
    by_weight: Dict[float, List[str]] = {}
    for m in job.models:
        if m.mimic:
            by_weight.setdefault(job.weight_of(m), []).append(m.name)
    return '; '.join(f'{w:g} ({", ".join(names)})' for w, names in by_weight.items())


def write_report(job: MainJob, rows, pre, ivs, wall_s) -> str:
    args = job.args
    by_block: Dict[str, List[Dict]] = {}
    for r in rows:
        by_block.setdefault(r['block'], []).append(r)
    teacher_rows = {r['name']: r for r in rows if r['block'] == 'teacher'}
    lines = ['# mmmimic built-in benchmark: feature mimic on vtest.avi', '',
             f'Command: `python tools/mimic_demo.py {" ".join(args.argv)}` '
             f'(wall time {wall_s / 60:.0f} min on this machine).', '',
             '## Precondition: is the teacher better than the students trained alone?', '',
             f'Validation MR-2 (%, every validation frame, Reasonable): teacher '
             f'{pre["teacher_val_mr2"]:.1f}; scratch students (mean over seeds): ' +
             ', '.join(f'{BY_NAME[n].label} {v:.1f}' for n, v in pre['students_val_mr2'].items())
             + '.', '']
    if pre['met'] is None:
        lines.append('This run has no cross-scale (headline) block; the same-input students are '
                     'judged one by one below.')
    elif pre['met']:
        lines.append(f'The teacher is at least {PRECONDITION_POINTS:.0f} points better than '
                     'every cross-scale scratch student on validation: this run can test the '
                     'claim.')
    else:
        lines.append(f'**The teacher is NOT at least {PRECONDITION_POINTS:.0f} points better '
                     'than every cross-scale scratch student on validation: this run cannot '
                     'test the paper\'s claim** (there is no gap for mimic to close).')
    for n, margin in pre['margins'].items():  # the same-input students, one by one
        if BY_NAME[n].block != 'same-input':
            continue
        if n in pre['same_input_not_met']:
            lines += ['', f'**Same-input block: the teacher is only {margin:.1f} points better '
                      f'than the {BY_NAME[n].label} on validation (less than '
                      f'{PRECONDITION_POINTS:.0f}): that comparison cannot test the claim.**']
        else:
            lines += ['', f'Same-input block: the teacher is {margin:.1f} points better than the '
                      f'{BY_NAME[n].label} on validation: that comparison can test the claim.']
    lines += ['', f'Seeds {list(args.seeds)} (mean ± sample std over seeds); mimic and scratch '
              'students are paired on each seed (same data order, crops and flips, same initial '
              'weights for the parts they share). Students: '
              f'{args.iters} iterations of batch 2 (320x384 crops of the 640x480 frames; '
              'half-input students see them at 160x192); stage 2: '
              f'{args.stage2_iters} more; teacher: up to {args.teacher_iters} iterations, '
              f'checkpoint chosen on validation MR-2 (every {args.teacher_val_interval}). Mimic '
              f'weight lambda1: {weights_text(job)} (chosen on validation). Test: every test '
              'frame, whole 640x480 frames, Caltech Reasonable. Speed-up: CPU latency at '
              f'{args.speed_shape} frames, each model at its own input, over the teacher of its '
              'kind.', '']
    titles = {'teacher': 'Teachers',
              'cross-scale': 'Cross-scale (headline): students at half the teacher\'s input',
              'same-input': 'Same input: students at the teacher\'s input',
              'stage2': 'Stage 2: R-FCN students (cross-scale, 1/2)'}
    for block, title in titles.items():
        if block not in by_block:
            continue
        ref = teacher_rows.get('teacher-rfcn' if block == 'stage2' else 'teacher')
        block_rows = by_block[block] if block == 'teacher' else [ref] + by_block[block]
        lines += [f'## {title}', '', table(block_rows), '']
    if ivs:
        lines += ['## Paired differences (A - B; MR-2: negative = A better; AP50: positive = A '
                  'better)', '',
                  f'95% intervals: t over seeds (training noise) and percentile bootstrap over '
                  f'test frames ({args.n_boot} resamples of blocks of {args.boot_block} '
                  'consecutive frames, the same frames for every model and seed; '
                  'docs/statistics.md).', '',
                  '| block | A | B | MR-2 diff | AP50 diff | gap to the teacher closed by A |',
                  '|---|---|---|---|---|---|']
        for r in ivs:
            gap = r.get('gap_closed', {}).get('text', '-')
            lines.append(f'| {r["block"]} {r["width"]} | {r["a"]} | {r["b"]} | '
                         f'{r["MR-2"]["text"]} | {r["AP"]["text"]} | {gap} |')
        lines.append('')
    lines += ['MR-FPPI curves of every model (seed %d): `mr_fppi.png`. Speed table: `speed/`.'
              % args.seeds[0], '',
              'These are NOT Caltech numbers: one static campus scene, labels from the classical '
              'procedure of docs/vtest_labels.md.']
    report = '\n'.join(lines) + '\n'
    atomic_write_text(osp.join(args.out, 'report.md'), report, args.overwrite, 'report')
    return report


#: what a run writes at the end; an earlier run's are kept unless --overwrite
REPORT_FILES = ('report.md', 'results.json', 'mr_fppi.png')


def plot_curves(job: MainJob, records: Dict) -> str:
    from mmmimic.evaluation.functional.caltech_plot import plot_mr_fppi
    from mmmimic.evaluation.functional.caltech_results import score_result_dirs
    seed = job.args.seeds[0]
    dirs, names = [], []
    for m in job.models:
        s = seed if m.seeded else job.args.seeds[0]
        dirs.append(job.result_dir(m, s))
        names.append(m.name)
    scored = score_result_dirs(dirs, osp.join(job.args.data_dir, 'annotations'),
                               settings=('Reasonable', ), sets=(TEST_SET, ),
                               img_list=osp.join(job.args.data_dir, SPLIT_LISTS['test']),
                               names=names)
    labels = {m.name: m.label for m in job.models}
    curves = [(labels[n], r['Reasonable']['fppi'], r['Reasonable']['miss_rate'],
               r['Reasonable']['MR-2']) for n, r in scored.items()]
    return plot_mr_fppi(curves, osp.join(job.args.out, 'mr_fppi.png'),
                        title=f'vtest.avi test frames, Reasonable (seed {seed})',
                        overwrite=job.args.overwrite)


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Teacher / mimic / scratch students on vtest.avi')
    parser.add_argument('--out', default='work_dirs/mimic_demo', help='output folder')
    parser.add_argument('--data-dir', default='data/vtest',
                        help='converted frames + annotations (the configs\' data_root)')
    parser.add_argument('--video', help='path of vtest.avi (default: found or downloaded)')
    parser.add_argument('--quick', action='store_true',
                        help='3 seeds, stage 1, cross-scale block (<= 45 min on 2 CPU cores)')
    parser.add_argument('--seeds', nargs='+', type=int, help='override the preset\'s seeds')
    parser.add_argument('--blocks', nargs='+', choices=['cross-scale', 'same-input', 'stage2'],
                        help='override the preset\'s blocks (the teacher is always trained)')
    parser.add_argument('--iters', type=int, help='stage-1 student iterations')
    parser.add_argument('--teacher', choices=list(TEACHER_CANDIDATES),
                        help='the RPN teacher (default: the preset\'s; candidates compared on '
                             'validation by benchmarks/vtest_teacher_sweep.py)')
    parser.add_argument('--teacher-iters', type=int, help='teacher iterations')
    parser.add_argument('--teacher-val-interval', type=int,
                        help='validate the teacher every N iterations (best checkpoint kept)')
    parser.add_argument('--stage2-iters', type=int, help='stage-2 iterations')
    parser.add_argument('--mimic-weight', type=float,
                        help='lambda1 of every mimic student (default: the preset\'s values, '
                             'chosen on validation, see PRESETS)')
    parser.add_argument('--mimic-weights', nargs='+', default=[], metavar='MODEL=LAMBDA1',
                        help='lambda1 of single mimic models, over --mimic-weight and the '
                             'preset (e.g. mimic-1-4=1)')
    parser.add_argument('--no-cache', action='store_true',
                        help='run the live teacher instead of the teacher-feature cache')
    parser.add_argument('--cache-max-gb', type=float, default=20.0)
    parser.add_argument('--n-boot', type=int, default=1000, help='frame-bootstrap resamples')
    parser.add_argument('--boot-block', type=int, default=10,
                        help='resample test frames in blocks of this many consecutive frames '
                             '(neighbouring video frames are alike; docs/statistics.md)')
    parser.add_argument('--gap', type=int, help='frames dropped between splits (builder default)')
    parser.add_argument('--workers', type=int, default=1, help='dataloader workers')
    parser.add_argument('--speed-runs', type=int, default=5)
    parser.add_argument('--speed-shape', default='480x640', help='HxW of the speed benchmark')
    parser.add_argument('--skip-speed', action='store_true')
    parser.add_argument('--force', nargs='*', default=[], choices=list(BY_NAME),
                        help='retrain (and re-test) these models')
    parser.add_argument('--force-data', action='store_true', help='rebuild the dataset')
    parser.add_argument('--force-eval', action='store_true', help='re-test every model')
    parser.add_argument('--force-speed', action='store_true', help='re-measure speed')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the report, results.json and mr_fppi.png of an earlier '
                        'run in --out (refused otherwise, before any stage runs)')
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    args.preset = 'quick' if args.quick else 'default'
    preset = PRESETS[args.preset]
    # --mimic-weight sets every mimic student; without it the preset's exceptions apply
    weights = dict(preset['mimic_weights']) if args.mimic_weight is None else {}
    for key in ('seeds', 'iters', 'teacher', 'teacher_iters', 'teacher_val_interval',
                'stage2_iters', 'mimic_weight'):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    mimic_names = [m.name for m in MODELS if m.mimic]
    for item in args.mimic_weights:
        name, _, value = item.partition('=')
        if name not in mimic_names:
            parser.error(f'--mimic-weights {item}: {name!r} is not a mimic model '
                         f'(one of {", ".join(mimic_names)})')
        try:
            weights[name] = float(value)
        except ValueError:
            parser.error(f'--mimic-weights {item}: {value!r} is not a number')
    for name, w in [('--mimic-weight', args.mimic_weight), *weights.items()]:
        if not w >= 0:
            parser.error(f'lambda1 must be >= 0: {name} = {w}')
    args.mimic_weights = weights
    args.blocks = ('teacher', *(args.blocks or [b for b in preset['blocks'] if b != 'teacher']))
    if 'stage2' in args.blocks and 'cross-scale' not in args.blocks:
        parser.error('--blocks stage2 needs cross-scale (stage 2 starts from its RPNs)')
    if 'stage2' in args.blocks and args.stage2_iters <= 0:
        parser.error('--blocks stage2 needs --stage2-iters > 0')
    if args.teacher_val_interval > args.teacher_iters:
        args.teacher_val_interval = args.teacher_iters
    return args


def main(argv=None) -> Dict:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name in REPORT_FILES:  # before hours of stages, not after them
        check_output_path(osp.join(args.out, name), args.overwrite, 'study output')
    import mmmimic  # noqa: F401
    t_start = time.time()
    try:
        prepare_data(args)
        job = MainJob(args)
        out = job.run()
    except StageError as err:
        log(f'stopped: {err}')
        raise SystemExit(1)
    records = frame_records(job)
    check_offline_scores(job, out['results'], records)
    plot_curves(job, records)
    rows = model_rows(job, out['results'], out['speed'])
    pre = precondition(job, out['val'])
    ivs = intervals(job, out['results'], records) if len(args.seeds) > 1 else []
    wall = time.time() - t_start
    summary = dict(args={k: v for k, v in vars(args).items()}, results=out['results'],
                   val=out['val'], speed=out['speed'], rows=rows, precondition=pre,
                   intervals=ivs, stage_seconds=job.stage_times, wall_seconds=wall)
    atomic_write_text(osp.join(args.out, 'results.json'),
                      json.dumps(summary, indent=1, default=str), args.overwrite, 'results file')
    print(write_report(job, rows, pre, ivs, wall))
    log(f'done in {wall / 60:.1f} min; report: {args.out}/report.md')
    return summary


if __name__ == '__main__':
    main()
