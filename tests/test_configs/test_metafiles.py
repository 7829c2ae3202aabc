"""model-index.yml imports one metafile.yml per config family (as mmdet does); every user-facing
config is listed exactly once, with existing paths and a declared collection."""
import glob
import os.path as osp

import pytest
import yaml

ROOT = osp.normpath(osp.join(osp.dirname(__file__), '..', '..'))


def _load(path):
    with open(osp.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def _user_facing_configs():
    """Every config except bases, the tiny test fixtures and the smoke test (the projects' configs
    folders count: their presets sit one level down)."""
    paths = glob.glob(osp.join(ROOT, 'configs', '*', '*.py')) + \
        glob.glob(osp.join(ROOT, 'projects', '*', 'configs', '*.py'))
    return sorted(
        osp.relpath(p, ROOT) for p in paths
        if osp.basename(osp.dirname(p)) not in ('_base_', 'smoke'))


def _metafiles():
    return _load('model-index.yml')['Import']


def test_model_index_imports_one_metafile_per_config_family():
    families = sorted({osp.dirname(p) for p in _user_facing_configs()})
    assert sorted(osp.dirname(m) for m in _metafiles()) == families
    for metafile in _metafiles():
        assert osp.isfile(osp.join(ROOT, metafile)), metafile


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


def test_every_user_facing_config_is_listed_exactly_once():
    listed = [m['Config'] for metafile in _metafiles() for m in _load(metafile)['Models']]
    assert sorted(listed) == _user_facing_configs()
    names = [osp.basename(p) for p in listed]
    assert len(names) == len(set(names))
