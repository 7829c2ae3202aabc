"""The stages of the vtest study: the stage planner, the ETA and the stage runners (train, cache,
score), with the config stamps that make finished stages reusable.

:class:`MainJob` runs the stages of one study run (the project's README, "Method"):

1. the RPN teacher, validated while it trains, its checkpoint chosen on validation MR-2;
2. the teacher-feature cache (the teacher's map of every training frame and flip);
3. per seed, the students of each block from paired initial weights;
4. every model scored on every test frame (and the precondition's models on validation), and
   the models timed (:mod:`.speed`).

Every stage prints its ETA (:class:`Eta`, from this output folder's measured times); finished
stages are reused and an interrupted training resumes from its last checkpoint. A stage whose
config changed since it ran stops the run and names it; a stage written before the study moved
into ``projects/`` (its config read from ``configs/vtest/``) is recognised and reused.
"""
import copy
import fcntl
import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import time
from typing import Dict, List, Optional, Sequence

from .common import REPO_ROOT, StageError, log
from . import hooks  # noqa: F401  (registers LaterBestCheckpointHook)
from .device import resolve_device, use_device
from .models import (BY_NAME, CONFIG_DIR, OLD_CONFIG_DIR, SPLIT_LISTS, VAL_EVALUATOR,
                     BenchmarkModel, models_of, speed_config, student_init_state,
                     vtest_train_config)
from .speed import measure_speed


# ----------------------------------------------------------------------------- ETA
class Eta:
    """Stage time estimates from this output folder's measured times (``timings.json``): seconds
    per training iteration per model, seconds per evaluation; unmeasured models borrow the
    nearest measured one of their block, else a conservative default."""
    DEFAULT_S_PER_IT = {'teacher': 1.0, 'cross-scale': 0.25, 'same-input': 0.6, 'stage2': 0.5,
                        'mmdet': 0.5}

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
        #: where the training, cache-fill and scoring stages run (``--device``, resolved)
        self.device = resolve_device(getattr(args, 'device', None))
        # the measured CPU times keep their file; another device's times go into their own
        kind = self.device.split(':')[0]
        self.eta = Eta(osp.join(args.out, 'timings.json' if kind == 'cpu' else
                                f'timings_{kind}.json'))
        self.ckpts: Dict[str, str] = {}  # '<name>@<seed>' -> trained checkpoint
        self.done = 0
        self.stage_times: Dict[str, float] = {}

    # --------------------------------------------------------------- bookkeeping
    @staticmethod
    def is_rpn_teacher(m: BenchmarkModel) -> bool:
        """The RPN teacher (or a candidate of a teacher sweep): validated while it trains, its
        checkpoint chosen on validation; the R-FCN teacher is fine-tuned from it instead."""
        return m.block == 'teacher' and m.init_from is None

    def selects_on_val(self, m: BenchmarkModel) -> bool:
        """A teacher validated while it trains, its best validation checkpoint kept (the RPN
        teacher or a candidate, the mmdet block's teacher)."""
        return self.is_rpn_teacher(m) or m.selects_on_val

    def iters_of(self, m: BenchmarkModel) -> int:
        if m.block == 'mmdet':
            return self.args.mmdet_teacher_iters if m.selects_on_val else self.args.mmdet_iters
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
        return not m.mimic and m.block in ('teacher', 'cross-scale', 'same-input', 'mmdet') \
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
            val_interval=args.teacher_val_interval if self.selects_on_val(m) else None,
            init_ckpt=init, stage1_ckpt=stage1,
            mimic_weight=self.weight_of(m) if m.mimic else None,
            teacher_cache=cache, cfg_options=m.cfg_options)
        if m.block == 'mmdet' and m.selects_on_val:  # ties on validation keep the later one
            cfg.default_hooks.checkpoint.type = 'LaterBestCheckpointHook'
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
        state = student_init_state(Config.fromfile(osp.join(REPO_ROOT, base)).model, seed)
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
            if old != digest and old == self.pre_move_digest(cfg):
                log(f'{work_dir}: a {name} run written before the study moved from '
                    f'{OLD_CONFIG_DIR} to {CONFIG_DIR} (the same config otherwise): reused, '
                    'its stamp updated')
                self.write_stamp(work_dir, cfg, digest)
                return True
            if old != digest:
                raise StageError(
                    f'{work_dir} holds a {name} run of another config (another teacher, '
                    f'schedule, data dir or preset: config sha256 {old[:12]} vs {digest[:12]} '
                    f'now; the old config is {osp.join(work_dir, "stage_config.py")}); pass '
                    f'--force {name} to retrain it, or --out for a separate run')
            return True
        self.write_stamp(work_dir, cfg, digest)
        return False

    @staticmethod
    def write_stamp(work_dir: str, cfg, digest: str) -> None:
        """Write ``stage_config.py`` and the stamp ``stage.json`` of a stage in ``work_dir``."""
        os.makedirs(work_dir, exist_ok=True)
        cfg.dump(osp.join(work_dir, 'stage_config.py'))
        with open(osp.join(work_dir, 'stage.json'), 'w') as f:
            json.dump(dict(config_sha256=digest), f)

    @staticmethod
    def pre_move_digest(cfg) -> str:
        """The stamp ``cfg`` had when the study's configs lived in ``configs/vtest/`` (the
        distillers name their teacher config by its absolute path)."""
        text = cfg.pretty_text
        for new, old in ((osp.join(REPO_ROOT, CONFIG_DIR), osp.join(REPO_ROOT, OLD_CONFIG_DIR)),
                         (CONFIG_DIR, OLD_CONFIG_DIR)):
            text = text.replace(new, old)
        return hashlib.sha256(text.encode()).hexdigest()

    def final_ckpt(self, m: BenchmarkModel, work_dir: str) -> Optional[str]:
        if self.selects_on_val(m):
            best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
            return best[-1] if best else None
        path = osp.join(work_dir, f'iter_{self.iters_of(m)}.pth')
        return path if osp.isfile(path) else None

    def train(self, m: BenchmarkModel, seed: int) -> str:
        """Train ``m`` for ``seed`` (or reuse / resume its run). Two processes sharing an
        output folder (a sweep per student beside the run) never train one model at once: the
        second waits for the first (a lock file beside the work dir) and then reuses its run."""
        work_dir = self.work_dir(m, seed)
        os.makedirs(osp.dirname(work_dir), exist_ok=True)
        with open(f'{work_dir}.lock', 'w') as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(f'{m.name} (seed {seed}): another process is training it; waiting')
                fcntl.flock(lock, fcntl.LOCK_EX)
            return self._train(m, seed, work_dir)

    def _train(self, m: BenchmarkModel, seed: int, work_dir: str) -> str:
        from mmengine.runner import Runner
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
        with use_device(self.device):
            Runner.from_cfg(cfg).train()
        seconds = time.time() - t0
        final = self.final_ckpt(m, work_dir)
        if final is None:
            raise StageError(f'{m.name} (seed {seed}) finished without its checkpoint in '
                             f'{work_dir}')
        with open(osp.join(work_dir, 'train_time.json'), 'w') as f:
            json.dump(dict(seconds=seconds, resumed=bool(cfg.resume), device=self.device), f)
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
        stats = fill_cache_from_config(cfg, progress=True, log=log, device=self.device)
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
        if m.block != 'mmdet':  # the Inception RPNs' single-level head
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
        with use_device(self.device):
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
