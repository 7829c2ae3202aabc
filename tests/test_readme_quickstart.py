"""The README's quickstart, run as written.

The commands are read from the README (the first ```bash block under the "Quickstart" heading)
and run one by one with bash, in a fresh folder that links the repository's ``configs/`` and
``tools/``, so everything they write (``data/``, ``work_dirs/``) lands in that folder. ``python``
is this interpreter. A command that fails, a file it should write that is missing, or a score
that is implausible or differs between PyTorch and onnxruntime fails the test: the README cannot
drift from the code.
"""
import os
import os.path as osp
import re
import stat
import subprocess
import sys
from typing import Dict, List

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(REPO_ROOT, 'README.md')
QUICKSTART_HEADING = re.compile(r'^## Quickstart\b', re.MULTILINE)
#: what tools/test.py prints for the quickstart's RPN (mmmimic's ProposalRecallMetric)
RECALL = re.compile(r'proposal/recall@(\d+)_iou(\d+): ([0-9.]+)')
#: seconds one command may take (the whole quickstart takes minutes)
COMMAND_TIMEOUT = 1200


def quickstart_commands(markdown: str) -> List[str]:
    """The shell commands of the first ```bash block under the ``## Quickstart`` heading.

    Continuation lines (ending in a backslash) are joined into one command; blank lines and
    ``#`` comment lines are dropped.

    Raises:
        ValueError: no Quickstart heading, or no ```bash block in its section, or an empty one.
    """
    heading = QUICKSTART_HEADING.search(markdown)
    if heading is None:
        raise ValueError('the README has no "## Quickstart" heading')
    section = markdown[heading.end():]
    next_heading = re.search(r'^## ', section, re.MULTILINE)
    if next_heading is not None:
        section = section[:next_heading.start()]
    block = re.search(r'^```bash\n(.*?)^```', section, re.MULTILINE | re.DOTALL)
    if block is None:
        raise ValueError('the README\'s Quickstart section has no ```bash block')
    commands, current = [], ''
    for line in block.group(1).splitlines():
        if not current and (not line.strip() or line.lstrip().startswith('#')):
            continue
        if line.rstrip().endswith('\\'):
            current += line.rstrip()[:-1].rstrip() + ' '
            continue
        commands.append((current + line.strip()).strip())
        current = ''
    if current:
        raise ValueError(f'the Quickstart block ends in a continuation line: {current}')
    if not commands:
        raise ValueError('the README\'s Quickstart block holds no command')
    return commands


def recalls(output: str) -> Dict[str, float]:
    """``{'recall@100_iou50': 93.3, ...}`` from the last metric line of a tools/test.py run."""
    lines = [line for line in output.splitlines() if RECALL.search(line)]
    assert lines, f'no proposal recall printed:\n{output[-3000:]}'
    return {f'recall@{n}_iou{iou}': float(v) for n, iou, v in RECALL.findall(lines[-1])}


def readme_commands() -> List[str]:
    with open(README, encoding='utf-8') as f:
        return quickstart_commands(f.read())


def test_quickstart_block_is_found_and_names_existing_files():
    """Fast: the block is there, runs the tools the issue names, and every script and config it
    reads exists in the repository (a renamed config or tool fails here in a second)."""
    commands = readme_commands()
    scripts = [c.split()[1] for c in commands]
    assert all(c.split()[0] == 'python' for c in commands), commands
    for needed in ('tools/misc/make_tiny_data.py', 'tools/train.py', 'tools/test.py',
                   'tools/deployment/export_onnx.py'):
        assert needed in scripts, f'the quickstart does not run {needed}'
    assert any('--teacher' in c.split() for c in commands if c.split()[1] == 'tools/train.py')
    assert any(c.split()[1] == 'tools/test.py' and c.split()[3].endswith('.onnx')
               for c in commands), 'the quickstart does not test the .onnx file'
    for command in commands:
        for word in command.split():
            if word.startswith(('tools/', 'configs/')):
                assert osp.isfile(osp.join(REPO_ROOT, word)), f'{word} (in: {command})'


@pytest.mark.parametrize('markdown', [
    '# mmmimic\n\n## Install\n\n```bash\nls\n```\n',
    '## Quickstart\n\nno block here\n\n## Next\n\n```bash\nls\n```\n',
    '## Quickstart\n\n```bash\n# only a comment\n```\n',
])
def test_quickstart_commands_refuses_a_readme_without_them(markdown):
    with pytest.raises(ValueError):
        quickstart_commands(markdown)


def test_quickstart_commands_joins_continuation_lines():
    markdown = ('## Quickstart\n\n```bash\n# make data\npython a.py x \\\n    --y 1\n\n'
                'python b.py\n```\n\n## Other\n\n```bash\npython c.py\n```\n')
    assert quickstart_commands(markdown) == ['python a.py x --y 1', 'python b.py']


def _python_wrapper(bin_dir: str) -> None:
    """``bin_dir/python``: this interpreter (a wrapper, so a venv's interpreter keeps its venv)."""
    os.makedirs(bin_dir)
    path = osp.join(bin_dir, 'python')
    with open(path, 'w') as f:
        f.write(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


def test_readme_quickstart_runs_as_written(tmp_path):
    """Every command of the README's quickstart, as written; then what each one wrote."""
    pytest.importorskip('onnx', reason='the quickstart exports ONNX: bash tools/install.sh '
                        '--deploy')
    pytest.importorskip('onnxruntime', reason='the quickstart runs ONNX: bash tools/install.sh '
                        '--deploy')
    commands = readme_commands()
    run_dir = tmp_path / 'checkout'
    run_dir.mkdir()
    for name in ('configs', 'tools'):
        os.symlink(osp.join(REPO_ROOT, name), run_dir / name)
    _python_wrapper(str(tmp_path / 'bin'))
    env = dict(os.environ)
    env['PATH'] = f'{tmp_path / "bin"}{os.pathsep}{env.get("PATH", "")}'
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    outputs = []
    for command in commands:
        done = subprocess.run(['bash', '-e', '-o', 'pipefail', '-c', command], cwd=run_dir,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=COMMAND_TIMEOUT)
        assert done.returncode == 0, \
            f'README quickstart command failed (exit {done.returncode}): {command}\n' \
            f'{done.stdout[-4000:]}'
        outputs.append((command, done.stdout))

    def output_of(script: str, *, last_arg_suffix: str) -> str:
        found = [out for cmd, out in outputs
                 if cmd.split()[1] == script and cmd.split()[3].endswith(last_arg_suffix)]
        assert len(found) == 1, f'{script} ... *{last_arg_suffix}: {len(found)} runs'
        return found[0]

    # the data, the teacher's and the student's checkpoints, the distiller config, the ONNX file
    assert (run_dir / 'data' / 'tiny_coco' / 'annotations' / 'train.json').is_file()
    written = sorted(str(p.relative_to(run_dir)) for p in run_dir.glob('work_dirs/**/*')
                     if p.suffix in ('.pth', '.onnx'))
    train_cmds = [c for c, _ in outputs if c.split()[1] == 'tools/train.py']
    assert len(train_cmds) == 2 and '--teacher' in train_cmds[1].split()
    teacher_ckpt = train_cmds[1].split()[train_cmds[1].split().index('--teacher') + 2]
    assert (run_dir / teacher_ckpt).is_file(), (teacher_ckpt, written)
    test_pth = [c for c, _ in outputs if c.split()[1] == 'tools/test.py'
                and c.split()[3].endswith('.pth')]
    assert len(test_pth) == 1
    dump, student_ckpt = test_pth[0].split()[2:4]
    assert (run_dir / student_ckpt).is_file(), (student_ckpt, written)
    onnx_file = [c for c, _ in outputs if c.split()[1] == 'tools/test.py'
                 and c.split()[3].endswith('.onnx')][0].split()[3]
    assert (run_dir / onnx_file).is_file(), (onnx_file, written)
    # the dump is still the distiller's config after both tests (tools/test.py got its own
    # --work-dir), so the student can be retested or exported again
    with open(run_dir / dump) as f:
        dumped = f.read()
    assert "type='FeatureMimicDistiller'" in dumped and 'OnnxDetector' not in dumped

    # the teacher check ran and passed; the student trained with the mimic loss
    student_out = [out for cmd, out in outputs if '--teacher' in cmd.split()][0]
    assert re.search(r'TeacherCheckHook: teacher .* \(better by [0-9.]+ >= 5\)', student_out)
    assert 'loss_mimic' in student_out

    # plausible scores, and the exported model scores exactly as the PyTorch one
    torch_scores = recalls(output_of('tools/test.py', last_arg_suffix='.pth'))
    onnx_scores = recalls(output_of('tools/test.py', last_arg_suffix='.onnx'))
    assert set(torch_scores) == {f'recall@{n}_iou{t}' for n in (10, 100, 300) for t in (50, 70)}
    assert all(0 <= v <= 100 for v in torch_scores.values()), torch_scores
    # a randomly initialised RPN of this config finds 10-20% at 10 proposals (the teacher check's
    # chance baseline); the trained student far more
    assert torch_scores['recall@10_iou50'] >= 40, torch_scores
    assert onnx_scores == pytest.approx(torch_scores, abs=1e-3), (onnx_scores, torch_scores)
