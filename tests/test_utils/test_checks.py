import pytest
import torch
import torch.nn as nn

from mmmimic.utils import check_checkpoint_matches_model, check_fresh_work_dir


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_matching_checkpoint_passes(tmp_path):
    path = str(tmp_path / 'ok.pth')
    torch.save({'state_dict': _model().state_dict()}, path)
    report = check_checkpoint_matches_model(_model(), path)
    assert report == dict(missing=[], unexpected=[], mismatched=[])


def test_ddp_prefixed_checkpoint_passes(tmp_path):
    path = str(tmp_path / 'ddp.pth')
    torch.save({'state_dict': {f'module.{k}': v for k, v in _model().state_dict().items()}}, path)
    check_checkpoint_matches_model(_model(), path)


def test_strict_lists_missing_unexpected_and_shapes(tmp_path):
    state = _model().state_dict()
    state.pop('1.running_var')
    state['0.weight'] = torch.zeros(5, 3, 3, 3)
    state['extra.bias'] = torch.zeros(1)
    path = str(tmp_path / 'bad.pth')
    torch.save({'state_dict': state}, path)
    with pytest.raises(RuntimeError) as e:
        check_checkpoint_matches_model(_model(), path)
    msg = str(e.value)
    assert 'bad.pth' in msg and "'1.running_var'" in msg and "'extra.bias'" in msg
    assert "shape mismatch (1): ['0.weight']" in msg
    # non-strict (load_from for fine-tuning) accepts partial overlap ...
    report = check_checkpoint_matches_model(_model(), path, strict=False)
    assert report['missing'] == ['1.running_var']


def test_non_strict_rejects_a_checkpoint_sharing_nothing(tmp_path):
    path = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'fc.weight': torch.zeros(2, 2)}}, path)
    with pytest.raises(RuntimeError, match=r'0 of 7 parameters match'):
        check_checkpoint_matches_model(_model(), path, strict=False)


def test_work_dir_with_checkpoints_is_protected(tmp_path):
    check_fresh_work_dir(str(tmp_path), resume=False)  # empty: fine
    (tmp_path / 'iter_4.pth').write_bytes(b'')
    with pytest.raises(FileExistsError, match='iter_4.pth'):
        check_fresh_work_dir(str(tmp_path), resume=False)
    check_fresh_work_dir(str(tmp_path), resume=True)
