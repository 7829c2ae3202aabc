"""model-index.yml imports one metafile.yml per config family (as mmdet does); every user-facing
config is listed exactly once, with existing paths and a declared collection. Each family's
collection points to its folder's README.md, whose table has a row per model with the command
that trains it (``tools/train.py``, or for a project its own ``python -m projects.<name>.tools.*``
command) and either every metric of the model's ``Results`` or "not trained here"."""
import glob
import os.path as osp
import re
from typing import Dict, List

import pytest
import yaml

ROOT = osp.normpath(osp.join(osp.dirname(__file__), '..', '..'))
NOT_TRAINED = 'not trained here'


def _load(path):
    with open(osp.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def _user_facing_configs():
    """Every config under configs/ and projects/*/configs/ (and one folder down, e.g. the vtest
    study's mmdet block) except the bases and the projects' presets (test fixtures live in
    mmmimic/testing/)."""
    paths = glob.glob(osp.join(ROOT, 'configs', '*', '*.py')) + \
        glob.glob(osp.join(ROOT, 'projects', '*', 'configs', '*.py')) + \
        glob.glob(osp.join(ROOT, 'projects', '*', 'configs', '*', '*.py'))
    return sorted(
        osp.relpath(p, ROOT) for p in paths
        if osp.basename(osp.dirname(p)) not in ('_base_', 'presets'))


def _metafiles():
    return _load('model-index.yml')['Import']


def readme_row(readme: str, config_name: str) -> str:
    """The first table row of ``readme`` that names ``config_name`` (``''`` if none)."""
    name = re.compile(rf'(?<![\w.-]){re.escape(config_name)}(?![\w.-])')
    return next((line for line in readme.splitlines()
                 if line.startswith('|') and name.search(line)), '')


def readme_problems(metafile: str, meta: dict, readme: str) -> List[str]:
    """What the README table gets wrong about the metafile's models (empty: nothing).

    Every metric value of a model's ``Results`` must appear in its row as a number; a model
    without ``Results`` must say "not trained here" (and one with them must not). A zoo model's
    (``configs/``) row must hold its ``tools/train.py`` command; a project's (``projects/<name>/``)
    that command or one of the project's own tools, ``python -m projects.<name>.tools.<tool>``
    with ``projects/<name>/tools/<tool>.py`` in the repository (the command its study trains
    it with).
    """
    problems = []
    zoo = metafile.startswith('configs/')
    project = None if zoo else metafile.split('/')[1]
    for model in meta['Models']:
        name = osp.basename(model['Config'])
        row = readme_row(readme, name)
        if not row:
            problems.append(f'{name}: no row in the README table')
            continue
        results = model.get('Results') or []
        for result in results:
            metrics: Dict[str, float] = result['Metrics']
            for metric, value in metrics.items():
                number = re.compile(rf'(?<![\d.]){re.escape(str(value))}(?![\d])')
                if not number.search(row):
                    problems.append(f'{name}: {metric} = {value} on {result["Dataset"]} is not '
                                    'in its README row')
        if not results and NOT_TRAINED not in row:
            problems.append(f'{name}: no Results, and its README row does not say '
                            f'"{NOT_TRAINED}"')
        if results and NOT_TRAINED in row:
            problems.append(f'{name}: has Results, but its README row says "{NOT_TRAINED}"')
        train = f'python tools/train.py {model["Config"]}'
        if train not in row and not (project and _project_tool_commands(project, row)):
            problems.append(f'{name}: its README row lacks "{train}"' + (
                '' if zoo else f' or a "python -m projects.{project}.tools.<tool>" command'))
    return problems


def _project_tool_commands(project: str, row: str) -> List[str]:
    """The ``python -m projects.<project>.tools.<tool>`` commands of ``row`` whose tool exists."""
    tools = re.findall(rf'python -m projects\.{re.escape(project)}\.tools\.(\w+)', row)
    return [t for t in tools
            if osp.isfile(osp.join(ROOT, 'projects', project, 'tools', t + '.py'))]


def test_model_index_imports_one_metafile_per_config_family():
    families = sorted({osp.dirname(p) for p in _user_facing_configs()})
    assert sorted(osp.dirname(m) for m in _metafiles()) == families
    for metafile in _metafiles():
        assert osp.isfile(osp.join(ROOT, metafile)), metafile


def test_no_test_fixture_left_in_configs():
    assert not glob.glob(osp.join(ROOT, 'configs', '*', 'tiny'))
    assert not osp.exists(osp.join(ROOT, 'configs', 'smoke'))


@pytest.mark.parametrize('metafile', _metafiles())
def test_metafile_models_exist_and_name_their_collection(metafile):
    meta = _load(metafile)
    collections = {c['Name'] for c in meta['Collections']}
    for collection in meta['Collections']:
        assert osp.isfile(osp.join(ROOT, collection['README'])), collection['README']
        assert collection['Paper']['URL'].startswith('https://')
    for model in meta['Models']:
        assert model['In Collection'] in collections, model['Name']
        config = model['Config']
        assert osp.dirname(config) == osp.dirname(metafile), config
        assert osp.isfile(osp.join(ROOT, config)), config
        assert model['Name'] == osp.splitext(osp.basename(config))[0]
        teacher = model['Metadata'].get('Teacher')
        if teacher is not None:
            assert osp.isfile(osp.join(ROOT, teacher)), teacher
        assert 'Weights' not in model  # no trained weights are released
        for result in model.get('Results') or []:  # mmdet's schema
            assert set(result) == {'Task', 'Dataset', 'Metrics'}, (model['Name'], result)
            assert result['Metrics'] and all(
                isinstance(v, (int, float)) for v in result['Metrics'].values()), result


@pytest.mark.parametrize('metafile', _metafiles())
def test_collection_readme_is_the_folder_readme_and_matches_the_metafile(metafile):
    meta = _load(metafile)
    folder = osp.dirname(metafile)
    for collection in meta['Collections']:
        readme = collection['README']
        if metafile.startswith('configs/'):
            assert readme == f'{folder}/README.md', readme
        else:  # a project: its README may sit above its configs/
            assert osp.basename(readme) == 'README.md', readme
            assert folder == osp.dirname(readme) or folder.startswith(
                osp.dirname(readme) + '/'), readme
    with open(osp.join(ROOT, meta['Collections'][0]['README'])) as f:
        assert readme_problems(metafile, meta, f.read()) == []


def test_readme_check_catches_a_wrong_number_and_a_missing_mark():
    meta = {'Models': [
        {'Config': 'configs/x/a_1xb2-40k_caltech.py',
         'Results': [{'Task': 'Object Detection', 'Dataset': 'Caltech',
                      'Metrics': {'MR-2': 12.34}}]},
        {'Config': 'configs/x/b_1xb2-40k_caltech.py'},
        {'Config': 'configs/x/c_1xb2-40k_caltech.py'}]}
    good = ('| a | [a_1xb2-40k_caltech.py](a_1xb2-40k_caltech.py) | MR-2 12.34 | '
            '`python tools/train.py configs/x/a_1xb2-40k_caltech.py` |\n'
            '| b | [b_1xb2-40k_caltech.py](b_1xb2-40k_caltech.py) | not trained here | '
            '`python tools/train.py configs/x/b_1xb2-40k_caltech.py` |\n'
            '| c | [c_1xb2-40k_caltech.py](c_1xb2-40k_caltech.py) | not trained here | '
            '`python tools/train.py configs/x/c_1xb2-40k_caltech.py` |\n')
    assert readme_problems('configs/x/metafile.yml', meta, good) == []
    bad = ('| a | [a_1xb2-40k_caltech.py](a_1xb2-40k_caltech.py) | MR-2 12.345 | '
           '`python tools/train.py configs/x/a_1xb2-40k_caltech.py` |\n'
           '| b | [b_1xb2-40k_caltech.py](b_1xb2-40k_caltech.py) | | '
           '`python tools/train.py configs/x/b_1xb2-40k_caltech.py` |\n'
           '| c | other |\n')
    problems = readme_problems('configs/x/metafile.yml', meta, bad)
    assert problems == [
        'a_1xb2-40k_caltech.py: MR-2 = 12.34 on Caltech is not in its README row',
        'b_1xb2-40k_caltech.py: no Results, and its README row does not say "not trained here"',
        'c_1xb2-40k_caltech.py: no row in the README table'], problems


def test_readme_check_takes_a_projects_own_command_only_if_its_tool_exists():
    meta = {'Models': [
        {'Config': 'projects/vtest_mimic/configs/a_vtest.py',
         'Results': [{'Task': 'Object Detection', 'Dataset': 'vtest (test split)',
                      'Metrics': {'MR-2 (%)': 39.7, 'AP50 (%)': 84.5}}]},
        {'Config': 'projects/vtest_mimic/configs/b_vtest.py'}]}
    metafile = 'projects/vtest_mimic/configs/metafile.yml'
    good = ('| [a_vtest.py](a_vtest.py) | 39.7 | 84.5 | '
            '`python -m projects.vtest_mimic.tools.run --blocks cross-scale` |\n'
            '| [b_vtest.py](b_vtest.py) | not trained here | '
            '`python tools/train.py projects/vtest_mimic/configs/b_vtest.py` |\n')
    assert readme_problems(metafile, meta, good) == []
    bad = ('| [a_vtest.py](a_vtest.py) | 39.7 | 84.5 | not trained here | '
           '`python -m projects.vtest_mimic.tools.no_such_tool` |\n'
           '| [b_vtest.py](b_vtest.py) | | `python -m projects.other.tools.run` |\n')
    assert readme_problems(metafile, meta, bad) == [
        'a_vtest.py: has Results, but its README row says "not trained here"',
        'a_vtest.py: its README row lacks "python tools/train.py '
        'projects/vtest_mimic/configs/a_vtest.py" or a '
        '"python -m projects.vtest_mimic.tools.<tool>" command',
        'b_vtest.py: no Results, and its README row does not say "not trained here"',
        'b_vtest.py: its README row lacks "python tools/train.py '
        'projects/vtest_mimic/configs/b_vtest.py" or a '
        '"python -m projects.vtest_mimic.tools.<tool>" command']
    # a zoo model's row takes tools/train.py only
    zoo = {'Models': [{'Config': 'configs/x/c.py'}]}
    assert readme_problems('configs/x/metafile.yml', zoo,
                           '| [c.py](c.py) | not trained here | '
                           '`python -m projects.vtest_mimic.tools.run` |\n') == [
        'c.py: its README row lacks "python tools/train.py configs/x/c.py"']


def test_every_user_facing_config_is_listed_exactly_once():
    listed = [m['Config'] for metafile in _metafiles() for m in _load(metafile)['Models']]
    assert sorted(listed) == _user_facing_configs()
    names = [osp.basename(p) for p in listed]
    assert len(names) == len(set(names))
