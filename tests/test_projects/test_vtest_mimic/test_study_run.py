"""The vtest study run (projects/vtest_mimic/tools/run.py) end to end on a 32-frame synthetic
walker video, 1-2 iterations per model: the cross-scale block and stage 2 (two-stage mimic
included), two paired seeds, the teacher chosen on validation, the teacher-feature cache, the
report with its precondition and interval tables, and a re-run that reuses every stage / stops on
a stale one."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from projects.vtest_mimic.tools.run import main as run_main
from projects.vtest_mimic.vtest_mimic.common import MR2
from projects.vtest_mimic.vtest_mimic.job import MainJob
from projects.vtest_mimic.vtest_mimic.models import BY_NAME, TEACHER_CANDIDATES
from projects.vtest_mimic.vtest_mimic.options import load_preset, parse_args
from projects.vtest_mimic.vtest_mimic.report import precondition, weights_text
from projects.vtest_mimic.vtest_mimic.synthetic_video import write_synthetic_video


def run(cmd, repo_root, env):
    return subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=1800)


def test_study_run_end_to_end(repo_root, tmp_path):
    video = str(tmp_path / 'walk.avi')
    write_synthetic_video(video, num_frames=32, size=(320, 240))
    out = str(tmp_path / 'demo')
    cmd = [sys.executable, '-m', 'projects.vtest_mimic.tools.run', '--video', video, '--out', out,
           '--data-dir', osp.join(out, 'data'), '--blocks', 'cross-scale', 'stage2',
           '--seeds', '0', '1', '--iters', '1', '--teacher-iters', '2',
           '--teacher-val-interval', '1', '--stage2-iters', '1', '--gap', '2', '--workers', '0',
           '--speed-runs', '1', '--speed-shape', '96x128', '--n-boot', '20',
           '--boot-block', '2']
    env = dict(os.environ, MMMIMIC_CACHE=str(tmp_path / 'cache'))  # keep ~/.cache untouched
    proc = run(cmd, repo_root, env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert 'ETA' in proc.stdout and 'all remaining stages' in proc.stdout

    report = open(osp.join(out, 'report.md')).read()
    for text in ('## Precondition', 'Cross-scale (headline)', 'Stage 2', 'Paired differences',
                 '1/2-Inception RPN + deconv, half input, mimic',
                 '1/4-Inception RPN, half input, scratch (no deconv)',
                 '1/2-Inception R-FCN + deconv, half input, two-stage mimic',
                 'NOT Caltech numbers'):
        assert text in report, text
    # the teacher is a row of the Teachers table once and opens the cross-scale table; the R-FCN
    # teacher opens the stage-2 table
    rows_of = lambda label: [ln for ln in report.splitlines()  # noqa: E731
                             if ln.startswith(f'| {label} ')]
    assert len(rows_of('Inception RPN (teacher)')) == 2
    assert len(rows_of('Inception R-FCN (two-stage teacher)')) == 2
    assert osp.getsize(osp.join(out, 'mr_fppi.png')) > 1000
    assert osp.isfile(osp.join(out, 'speed', 'speed.png'))

    summary = json.load(open(osp.join(out, 'results.json')))
    rows = {r['name']: r for r in summary['rows']}
    assert set(rows) == {'teacher', 'xs-mimic-1-2', 'xs-scratch-1-2', 'xs-nodeconv-1-2',
                         'xs-mimic-1-4', 'xs-scratch-1-4', 'xs-nodeconv-1-4', 'teacher-rfcn',
                         's2-mimic-1-2', 's2-scratch-1-2', 's2-twostage-1-2'}
    for r in rows.values():
        assert 0 <= r['mr2'][0] <= 100 and 0 <= r['ap50'][0] <= 100
        assert r['seeds'] == ([0] if r['name'].startswith('teacher') else [0, 1])
    # students are smaller and faster at their own (half) input; mimic = its scratch twin
    assert rows['xs-mimic-1-2']['params_m'] == rows['xs-scratch-1-2']['params_m']
    assert rows['xs-nodeconv-1-4']['params_m'] < rows['xs-nodeconv-1-2']['params_m'] < \
        0.3 * rows['teacher']['params_m']
    assert rows['s2-mimic-1-2']['speedup_over'] == 'teacher-rfcn'
    # the precondition block and the interval table are computed from the runs
    pre = summary['precondition']
    assert set(pre['students_val_mr2']) == {'xs-scratch-1-2', 'xs-nodeconv-1-2',
                                            'xs-scratch-1-4', 'xs-nodeconv-1-4'}
    assert isinstance(pre['met'], bool)
    pairs = {(r['a'], r['b']) for r in summary['intervals']}
    assert {('xs-mimic-1-2', 'xs-scratch-1-2'), ('xs-mimic-1-2', 'xs-nodeconv-1-2'),
            ('s2-mimic-1-2', 's2-scratch-1-2'), ('s2-twostage-1-2', 's2-mimic-1-2')} <= pairs
    for r in summary['intervals']:
        assert r['MR-2']['seeds']['n'] == 2

    # the teacher's checkpoint is the one chosen on validation; mimic runs read the cache
    teacher_dir = osp.join(out, 'shared', 'teacher')
    assert any(f.startswith('best_caltech_Reasonable_MR-2_iter_') for f in os.listdir(teacher_dir))
    assert osp.isfile(osp.join(out, 'teacher_cache', 'data.mdb'))
    # paired seeds: mimic, scratch and no-deconv students start from the same weights
    inits = {n: torch.load(osp.join(out, 'seed1', 'init', f'{n}.pth'))['state_dict']
             for n in ('xs-mimic-1-2', 'xs-scratch-1-2', 'xs-nodeconv-1-2')}
    key = 'backbone.stem.0.conv.weight'
    assert torch.equal(inits['xs-mimic-1-2']['student.' + key], inits['xs-scratch-1-2'][key])
    assert torch.equal(inits['xs-nodeconv-1-2'][key], inits['xs-scratch-1-2'][key])
    assert not any(k.startswith('neck.') for k in inits['xs-nodeconv-1-2'])
    seed0 = torch.load(osp.join(out, 'seed0', 'init', 'xs-scratch-1-2.pth'))['state_dict']
    assert not torch.equal(seed0[key], inits['xs-scratch-1-2'][key])
    # the offline scoring of the result files agrees with the metric
    assert 'reproduces CaltechMRMetric for every model' in proc.stdout
    assert osp.isfile(osp.join(out, 'seed1', 'results', 'res', 'xs-nodeconv-1-4', 'set02',
                               'V000.txt'))

    # a re-run reuses every finished stage (and replaces the report only with --overwrite)
    cmd.append('--overwrite')
    proc = run(cmd, repo_root, env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert proc.stdout.count('reusing') == 2 + 2 * 9
    # ... and its ETA knows it: every training and scoring stage and the complete cache are
    # announced as reused, and nothing is left in the estimate
    assert proc.stdout.count('(finished before: reused;') == 2 * (2 + 2 * 9) + 1
    assert 'stage 1/41: train teacher (seed 0, 2 iterations) (finished before: reused; all ' \
        'remaining stages ~0.0 min)' in proc.stdout
    assert 'teacher-feature cache (finished before: reused;' in proc.stdout
    # another teacher schedule over the same output folder: stopped, naming the stage
    stale = [c if c != '2' or i != cmd.index('--teacher-iters') + 1 else '3'
             for i, c in enumerate(cmd)]
    proc = run(stale, repo_root, env)
    assert proc.returncode == 1
    assert 'holds a teacher run of another config' in proc.stdout
    assert '--force teacher' in proc.stdout


def test_precondition_judges_the_same_input_students_one_by_one(repo_root):
    mr2 = MR2

    class Job:
        class args:
            seeds = [0, 1]

    val = {'teacher': {0: {mr2: 26.0}},
           'xs-scratch-1-2': {0: {mr2: 60.0}, 1: {mr2: 61.0}},
           'scratch-1-2': {0: {mr2: 27.0}, 1: {mr2: 29.8}},  # 2.4 points behind the teacher
           'scratch-1-4': {0: {mr2: 43.0}, 1: {mr2: 44.2}}}
    pre = precondition(Job, val)
    assert pre['met']  # the headline (cross-scale) block can test the claim
    assert pre['same_input_not_met'] == ['scratch-1-2']
    assert abs(pre['margins']['scratch-1-2'] - 2.4) < 1e-9
    val['xs-scratch-1-2'] = {0: {mr2: 29.0}, 1: {mr2: 30.0}}
    assert precondition(Job, val)['met'] is False
    # a run without the cross-scale block has no headline verdict, only the per-student one
    del val['xs-scratch-1-2']
    pre = precondition(Job, val)
    assert pre['met'] is None and pre['same_input_not_met'] == ['scratch-1-2']


def test_mimic_weights_per_model(repo_root, tmp_path, capsys):
    """The preset's per-model lambda1 reaches that model's training config only; --mimic-weight
    sets every mimic student; --mimic-weights overrides single models and refuses bad ones."""
    import pytest

    def weights(*argv):
        job = MainJob(parse_args(['--out', str(tmp_path), *argv]))
        return {m.name: job.weight_of(m) for m in job.models if m.mimic}, job

    default = load_preset('default')
    got, job = weights()
    assert got['xs-mimic-1-2'] == got['xs-mimic-1-4'] == default['mimic_weight']
    assert got['s2-twostage-1-2'] == default['mimic_weight']
    for name, w in default['mimic_weights'].items():
        assert got[name] == w
    assert set(default['mimic_weights']) <= set(got)
    assert weights_text(job) == \
        '10 (xs-mimic-1-2, xs-mimic-1-4, s2-twostage-1-2); 0.1 (mimic-1-2, mimic-1-4); ' \
        '1 (mm-mimic-frcnn, mm-mimic-retina)'
    job.ckpts['teacher@0'] = 'teacher.pth'
    cfg = job.config_of(BY_NAME['mimic-1-2'], 0, for_training=False)
    assert cfg.model.mimic_loss.loss_weight == default['mimic_weights']['mimic-1-2']

    got, _ = weights('--mimic-weight', '2')  # every mimic student, preset exceptions dropped
    assert set(got.values()) == {2.0}
    got, _ = weights('--mimic-weight', '2', '--mimic-weights', 'mimic-1-4=0.5')
    assert got['mimic-1-4'] == 0.5 and got['mimic-1-2'] == 2.0
    got, _ = weights('--quick', '--mimic-weights', 'xs-mimic-1-4=1')
    assert got == {'xs-mimic-1-2': load_preset('quick')['mimic_weight'], 'xs-mimic-1-4': 1.0}
    for bad, words in ((['--mimic-weights', 'scratch-1-2=1'], "'scratch-1-2' is not a mimic"),
                       (['--mimic-weights', 'mimic-1-2=x'], "'x' is not a number"),
                       (['--mimic-weights', 'mimic-1-2=-1'], 'lambda1 must be >= 0')):
        with pytest.raises(SystemExit):
            parse_args(bad)
        assert words in capsys.readouterr().err


def test_teacher_candidate_choice(repo_root, tmp_path, capsys):
    """--teacher puts a TEACHER_CANDIDATES entry in the teacher's place: its config and run
    folder, its own teacher-feature cache, its checkpoint in every mimic student's config, and
    its own folders for everything that reads it; the scratch students do not change; an
    unknown candidate is refused."""
    import pytest

    def job(*argv):
        return MainJob(parse_args(['--out', str(tmp_path), *argv]))

    plain = job()
    assert plain.args.teacher == load_preset('default')['teacher'] == 'full'
    teacher = plain.models[0]
    assert teacher is BY_NAME['teacher']
    assert plain.work_dir(teacher, 0) == osp.join(str(tmp_path), 'shared', 'teacher')
    assert plain.cache_cfg()['dir'] == osp.join(str(tmp_path), 'teacher_cache')

    jitter = job('--teacher', 'jitter')
    teacher = jitter.models[0]
    assert teacher is TEACHER_CANDIDATES['jitter'] and teacher.name == 'teacher'
    assert [m.name for m in jitter.models] == [m.name for m in plain.models]
    assert jitter.is_rpn_teacher(teacher) and jitter.iters_of(teacher) == 1500
    run = osp.join(str(tmp_path), 'shared', 'teacher-jitter')
    assert jitter.work_dir(teacher, 0) == run
    assert jitter.cache_cfg()['dir'] == osp.join(str(tmp_path), 'teacher_cache_teacher-jitter')
    cfg = jitter.config_of(teacher, 0)
    assert cfg.work_dir == run and cfg.train_cfg.val_interval == 250
    assert [t['type'] for t in cfg.train_dataloader.dataset.pipeline][2] == 'RandomResize'
    jitter.ckpts['teacher@0'] = osp.join(run, 'best.pth')
    mimic = jitter.config_of(BY_NAME['xs-mimic-1-2'], 0, for_training=False)
    assert mimic.model.teacher_ckpt == osp.join(run, 'best.pth')
    # the scratch students' configs are the plain run's (their runs are shared)
    for name in ('xs-scratch-1-2', 's2-scratch-1-2', 'scratch-1-4'):
        if BY_NAME[name].init_from:
            for j in (plain, jitter):
                j.ckpts[f'{BY_NAME[name].init_from}@0'] = 'stage1.pth'
        a, b = (j.config_of(BY_NAME[name], 0, for_training=False) for j in (plain, jitter))
        assert a.pretty_text == b.pretty_text, name
    # one output folder keeps both teachers' runs: what reads the teacher gets its own folder,
    # the scratch students are shared
    root = str(tmp_path)
    for name, seed, plain_dir, jitter_dir in (
            ('xs-mimic-1-2', 1, 'seed1/xs-mimic-1-2', 'seed1/xs-mimic-1-2_teacher-jitter'),
            ('mimic-1-4', 0, 'seed0/mimic-1-4', 'seed0/mimic-1-4_teacher-jitter'),
            ('xs-scratch-1-2', 1, 'seed1/xs-scratch-1-2', 'seed1/xs-scratch-1-2'),
            ('teacher-rfcn', 0, 'shared/teacher-rfcn', 'shared/teacher-rfcn_teacher-jitter'),
            ('s2-mimic-1-2', 0, 'seed0/s2-mimic-1-2', 'seed0/s2-mimic-1-2_teacher-jitter'),
            ('s2-twostage-1-2', 0, 'seed0/s2-twostage-1-2',
             'seed0/s2-twostage-1-2_teacher-jitter'),
            ('s2-scratch-1-2', 0, 'seed0/s2-scratch-1-2', 'seed0/s2-scratch-1-2')):
        m = BY_NAME[name]
        assert plain.work_dir(m, seed) == osp.join(root, plain_dir), name
        assert jitter.work_dir(m, seed) == osp.join(root, jitter_dir), name
        assert jitter.result_dir(m, seed) == osp.join(
            root, osp.dirname(jitter_dir), 'results', 'res', osp.basename(jitter_dir)), name
    with pytest.raises(SystemExit):
        parse_args(['--teacher', 'huge'])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


@pytest.mark.parametrize('name', ['report.md', 'results.json', 'mr_fppi.png'])
def test_an_earlier_report_is_kept_unless_overwrite(repo_root, tmp_path, name):
    kept = tmp_path / name
    kept.write_text('an earlier run')
    data_dir = tmp_path / 'no-data'
    with pytest.raises(FileExistsError, match=f'study output {kept} already exists; pass '
                       '--overwrite'):
        run_main(['--out', str(tmp_path), '--data-dir', str(data_dir)])
    assert kept.read_text() == 'an earlier run' and not data_dir.exists()  # refused at once


def test_cfg_options_override_the_preset(tmp_path, capsys):
    """--cfg-options sets preset keys (under the explicit flags); a key no preset has is
    refused."""
    args = parse_args(['--out', str(tmp_path), '--quick', '--cfg-options', 'iters=5',
                       'mimic_weights.xs-mimic-1-4=2', 'seeds=[3,4]'])
    assert args.iters == 5 and list(args.seeds) == [3, 4]
    job = MainJob(args)
    assert {m.name: job.weight_of(m) for m in job.models if m.mimic} == {
        'xs-mimic-1-2': load_preset('quick')['mimic_weight'], 'xs-mimic-1-4': 2.0}
    assert parse_args(['--quick', '--cfg-options', 'iters=5', '--iters', '7']).iters == 7
    with pytest.raises(SystemExit):
        parse_args(['--cfg-options', 'itres=5'])
    assert "--cfg-options itres: not a preset key" in capsys.readouterr().err


def test_a_stage_written_before_the_move_is_reused(tmp_path, capsys):
    """A work dir stamped when the configs lived in configs/vtest/ (the distillers' teacher path
    differs) is reused with its stamp renewed; a really different config still stops the run."""
    import hashlib

    from projects.vtest_mimic.vtest_mimic.common import REPO_ROOT, StageError
    from projects.vtest_mimic.vtest_mimic.models import CONFIG_DIR, OLD_CONFIG_DIR
    job = MainJob(parse_args(['--out', str(tmp_path), '--quick']))
    job.ckpts['teacher@0'] = 'teacher.pth'
    cfg = job.config_of(BY_NAME['xs-mimic-1-2'], 0)
    old_text = cfg.pretty_text.replace(osp.join(REPO_ROOT, CONFIG_DIR),
                                       osp.join(REPO_ROOT, OLD_CONFIG_DIR))
    assert old_text != cfg.pretty_text  # the teacher config's path is in the config
    work_dir = str(tmp_path / 'seed0' / 'xs-mimic-1-2')
    os.makedirs(work_dir)
    stamp = osp.join(work_dir, 'stage.json')
    with open(stamp, 'w') as f:
        json.dump(dict(config_sha256=hashlib.sha256(old_text.encode()).hexdigest()), f)
    assert job.check_stamp(work_dir, cfg, 'xs-mimic-1-2') is True
    assert 'written before the study moved from configs/vtest/' in capsys.readouterr().out
    assert json.load(open(stamp))['config_sha256'] == \
        hashlib.sha256(cfg.pretty_text.encode()).hexdigest()
    assert job.check_stamp(work_dir, cfg, 'xs-mimic-1-2') is True
    with open(stamp, 'w') as f:
        json.dump(dict(config_sha256='0' * 64), f)
    with pytest.raises(StageError, match='holds a xs-mimic-1-2 run of another config'):
        job.check_stamp(work_dir, cfg, 'xs-mimic-1-2')


def test_the_old_entry_point_names_the_new_one(repo_root):
    proc = subprocess.run([sys.executable, 'tools/mimic_demo.py', '--quick'], cwd=repo_root,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'python -m projects.vtest_mimic.tools.run' in proc.stderr
