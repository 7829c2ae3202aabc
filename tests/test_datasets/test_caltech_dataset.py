"""CaltechPedestrianDataset on hand-written bbGt files (both annotation namings)."""
import os.path as osp

import pytest

from mmmimic.datasets import CaltechPedestrianDataset, caltech_io, parse_img_id


def _write(root, name, objs):
    caltech_io.write_bbgt(osp.join(root, 'annotations', name), objs)


@pytest.fixture
def root(tmp_path):
    root = str(tmp_path)
    _write(root, 'set00_V000_I00002.txt',
           [dict(lbl='person', pos=[10, 20, 30, 60], occl=1, posv=[10, 20, 30, 30]),
            dict(lbl='people', pos=[100, 100, 50, 50])])
    _write(root, 'set00_V000_I00005.txt', [dict(lbl='people', pos=[1, 1, 5, 5])])
    _write(root, 'set00_V000_I00008.txt', [])
    _write(root, 'set06_V000_I00029.jpg.txt',  # the new test annotations' naming
           [dict(lbl='person', pos=[0, 0, 41, 100], ign=1)])
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.write('set00_V000_I00002\nset00_V000_I00005\nset00_V000_I00008\n')
    return root


def test_instances(root):
    ds = CaltechPedestrianDataset(data_root=root, ann_file='train.txt', lazy_init=False)
    assert len(ds) == 3
    info = ds.get_data_info(0)
    assert info['img_path'] == osp.join(root, 'images', 'set00_V000_I00002.jpg')
    assert info['ann_path'].endswith('set00_V000_I00002.txt')
    assert (info['height'], info['width']) == (480, 640)
    person, people = info['instances']
    assert person == dict(bbox=[10, 20, 40, 80], bbox_label=0, ignore_flag=0, lbl='person',
                          bbox_vis=[10, 20, 40, 50], occl=1)
    assert people['ignore_flag'] == 1 and people['lbl'] == 'people'
    assert ds.metainfo['classes'] == ('person', )


def test_filter_empty_gt_only_in_training(root):
    ds = CaltechPedestrianDataset(data_root=root, ann_file='train.txt',
                                  filter_cfg=dict(filter_empty_gt=True))
    assert [d['img_id'] for d in ds.load_data_list()][:1] == ['set00_V000_I00002']
    assert len(ds) == 1  # 'people' only and empty frames dropped
    ds = CaltechPedestrianDataset(data_root=root, ann_file='train.txt', test_mode=True,
                                  filter_cfg=dict(filter_empty_gt=True))
    assert len(ds) == 3


def test_folder_listing_sets_and_jpg_txt(root):
    ds = CaltechPedestrianDataset(data_root=root, sets=[6])
    assert len(ds) == 1
    info = ds.get_data_info(0)
    assert info['ann_path'].endswith('.jpg.txt')
    assert info['instances'][0]['ignore_flag'] == 1  # bbGt ign column
    assert len(CaltechPedestrianDataset(data_root=root)) == 4


def test_bad_inputs_name_the_file(root):
    with open(osp.join(root, 'missing.txt'), 'w') as f:
        f.write('set00_V000_I00011\n')
    with pytest.raises(FileNotFoundError, match=r'set00_V000_I00011\.txt'):
        CaltechPedestrianDataset(data_root=root, ann_file='missing.txt')
    with open(osp.join(root, 'annotations', 'set00_V000_I00008.txt'), 'w') as f:
        f.write('% bbGt version=3\nperson 1 2 3\n')
    with pytest.raises(ValueError, match=r'set00_V000_I00008\.txt:2: expected 12 tokens'):
        CaltechPedestrianDataset(data_root=root, ann_file='train.txt')
    with pytest.raises(FileNotFoundError, match='annotation folder'):
        CaltechPedestrianDataset(data_root=root, data_prefix=dict(img='i/', ann='nope/'))


def test_parse_img_id():
    assert parse_img_id('set06_V001_I00029') == (6, 1, 29)
    with pytest.raises(ValueError, match='not a Caltech image id'):
        parse_img_id('000001')


def test_inverted_box_is_refused_naming_file_and_line(root):
    """Issue 24: an inverted bbGt box was loaded (and evaluated as an ignore region)."""
    path = osp.join(root, 'annotations', 'set00_V000_I00005.txt')
    with open(path, 'w') as f:
        f.write('% bbGt version=3\npeople 1 1 5 5 0 0 0 0 0 0 0\nperson 50 60 -30 -60 0 0 0 0 0 0 '
                '0\n')
    with pytest.raises(ValueError, match=r"set00_V000_I00005\.txt:3: 'person' pos \[l, t, w, h\] "
                                         r'= \[50, 60, -30, -60\] has a zero or negative width'):
        CaltechPedestrianDataset(data_root=root, ann_file='train.txt', lazy_init=False)


def test_repeated_image_id_in_the_list_is_refused(root):
    listed = open(osp.join(root, 'train.txt')).read().split()
    with open(osp.join(root, 'train.txt'), 'a') as f:
        f.write(listed[0] + '\n')
    with pytest.raises(ValueError, match=rf'train.txt:{len(listed) + 1}: image {listed[0]} is '
                       r'listed twice \(lines 1 and'):
        CaltechPedestrianDataset(data_root=root, ann_file='train.txt', lazy_init=False)
