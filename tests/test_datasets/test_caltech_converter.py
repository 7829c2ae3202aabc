"""caltech_converter: re-conversion from another source and the bad inputs that must be refused
with the file, frame and object at fault (the happy path through dataset and metric is
tests/test_tools/test_caltech_pipeline.py)."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mmmimic.datasets import caltech_io as cio
from mmmimic.datasets.caltech_converter import (SOURCES_FILE, convert_caltech,
                                                source_fingerprint)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'dataset_converters', 'caltech.py')
N_FRAMES = 60  # test preset: frames 29 and 59; train10x: 2, 5, ..., 59


def _jpeg(i, size=(48, 64)):
    img = np.full(size + (3, ), (i * 37) % 255, np.uint8)
    img[::7] = 255 - img[::7]
    return cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def _frames(lbl='person', x=100.0, extra=None):
    frames = [[] for _ in range(N_FRAMES)]
    for f in (29, 59):
        frames[f] = [dict(id=1, lbl=lbl, pos=[x, 100, 41, 100])]
    for f, objs in (extra or {}).items():
        frames[f] = objs
    return frames


def make_release(root, set_no=6, videos=(0, ), jpgs=None, frames=None, seq_names=None):
    jpgs = jpgs or [_jpeg(i) for i in range(N_FRAMES)]
    for v in videos:
        name = (seq_names or {}).get(v, f'V{v:03d}')
        cio.write_seq(osp.join(root, f'set{set_no:02d}', name + '.seq'), jpgs, 64, 48)
        cio.write_vbb(osp.join(root, 'annotations', f'set{set_no:02d}', name + '.vbb'),
                      frames or _frames())
    return str(root)


def _ann(out, img_id):
    return cio.read_bbgt(osp.join(out, 'annotations', img_id + '.txt'))


def test_fingerprint_recorded_and_resume(tmp_path):
    src = make_release(tmp_path / 'a', videos=(0, 1))
    out = str(tmp_path / 'out')
    counts = convert_caltech(src, out, ['test'], progress=False)
    assert counts['test'][6]['written'] == 4
    with open(osp.join(out, SOURCES_FILE)) as f:
        videos = json.load(f)['videos']
    assert sorted(videos) == ['set06/V000', 'set06/V001']
    seq, vbb = osp.join(src, 'set06', 'V000.seq'), osp.join(src, 'annotations', 'set06',
                                                            'V000.vbb')
    assert videos['set06/V000'] == source_fingerprint(seq, vbb, full=True)
    assert videos['set06/V000']['vbb']['size'] == osp.getsize(vbb)
    assert set(videos['set06/V000']['seq']) == {'size', 'sha256_ends', 'sha256'}
    # a copy of the release (new paths and mtimes, same content) is the same source
    copy = str(tmp_path / 'copy')
    shutil.copytree(src, copy, copy_function=shutil.copyfile)
    assert convert_caltech(copy, out, ['test'], progress=False)['test'][6]['written'] == 0


def test_reconvert_from_a_different_source_replaces_old_output(tmp_path):
    """Issue 10: the old annotations were kept while the counts described the new source."""
    src_a = make_release(tmp_path / 'a', videos=(0, 1))
    src_b = make_release(tmp_path / 'b', videos=(0, 1))
    # B differs from A in V001 only: other boxes and labels, other frames
    make_release(tmp_path / 'b', videos=(1, ), jpgs=[_jpeg(i + 3) for i in range(N_FRAMES)],
                 frames=_frames(lbl='people', x=300.0))
    # V000 byte-identical in both (a .vbb written in another second has another header time)
    for folder, _, files in os.walk(src_a):
        for name in files:
            if name.startswith('V000.'):
                rel = osp.relpath(osp.join(folder, name), src_a)
                shutil.copyfile(osp.join(folder, name), osp.join(src_b, rel))
    out = str(tmp_path / 'out')
    convert_caltech(src_a, out, ['test'], progress=False)
    assert _ann(out, 'set06_V001_I00029')[0]['lbl'] == 'person'
    with pytest.warns(UserWarning, match=r'4 output files of set06/V001 were converted from a '
                      r'different source; deleting them'):
        counts = convert_caltech(src_b, out, ['test'], progress=False)
    assert counts['test'][6] == dict(images=4, with_person=2, persons=2, written=2)
    objs = _ann(out, 'set06_V001_I00029')
    assert objs[0]['lbl'] == 'people' and objs[0]['pos'] == [300, 100, 41, 100]
    with open(osp.join(out, 'images', 'set06_V001_I00059.jpg'), 'rb') as f:
        assert f.read() == _jpeg(59 + 3)
    assert _ann(out, 'set06_V000_I00029')[0]['lbl'] == 'person'  # unchanged video kept
    assert convert_caltech(src_b, out, ['test'], progress=False)['test'][6]['written'] == 0


def test_output_without_source_record_is_reconverted(tmp_path):
    src = make_release(tmp_path / 'a')
    out = str(tmp_path / 'out')
    # an output folder from an older converter: frames but no sources.json, stale annotation
    cio.write_bbgt(osp.join(out, 'annotations', 'set06_V000_I00029.txt'),
                   [dict(lbl='people', pos=[1, 2, 3, 4])])
    os.makedirs(osp.join(out, 'images'))
    with open(osp.join(out, 'images', 'set06_V000_I00029.jpg'), 'wb') as f:
        f.write(_jpeg(99))
    with pytest.warns(UserWarning, match='without a source record'):
        counts = convert_caltech(src, out, ['test'], progress=False)
    assert counts['test'][6]['written'] == 2
    assert _ann(out, 'set06_V000_I00029')[0]['lbl'] == 'person'


def test_lists_of_other_presets_naming_replaced_videos_are_removed(tmp_path):
    src_a = make_release(tmp_path / 'a', set_no=0)
    src_b = make_release(tmp_path / 'b', set_no=0, frames=_frames(x=200.0))
    out = str(tmp_path / 'out')
    convert_caltech(src_a, out, ['train10x', 'train1x'], progress=False)
    with pytest.warns(UserWarning, match=r'train10x\.txt listed frames of re-converted videos'):
        convert_caltech(src_b, out, ['train1x'], progress=False)
    assert not osp.exists(osp.join(out, 'train10x.txt'))
    assert osp.isfile(osp.join(out, 'train1x.txt'))


def test_corrupt_jpeg_frames_are_refused(tmp_path):
    jpgs = [_jpeg(i) for i in range(N_FRAMES)]
    truncated = list(jpgs)
    truncated[59] = jpgs[59][:len(jpgs[59]) // 2]
    src = make_release(tmp_path / 'trunc', jpgs=truncated)
    out = str(tmp_path / 'out')
    with pytest.raises(ValueError, match=r'V000\.seq: frame 59 \(0-based\): corrupt JPEG: no end '
                       r'marker FF D9'):
        convert_caltech(src, out, ['test'], progress=False)
    assert os.listdir(osp.join(out, 'images')) == ['set06_V000_I00029.jpg']  # earlier frame ok
    # a garbled header keeps both markers: only the decode check sees it
    garbled = list(jpgs)
    body = bytearray(jpgs[29])
    body[20:120] = bytes(range(100))
    garbled[29] = bytes(body)
    src = make_release(tmp_path / 'garbled', jpgs=garbled)
    with pytest.raises(ValueError, match=r'V000\.seq: frame 29 \(0-based\): corrupt image: '
                       r'OpenCV cannot decode'):
        convert_caltech(src, str(tmp_path / 'out2'), ['test'], progress=False)
    counts = convert_caltech(src, str(tmp_path / 'out3'), ['test'], progress=False,
                             frame_check='markers')
    assert counts['test'][6]['written'] == 2


@pytest.mark.parametrize('pos,what', [([100, 100, float('nan'), 100], 'NaN/inf coordinates'),
                                      ([100, 100, 41, -100],
                                       'a zero or negative width or height')])
def test_nan_or_negative_vbb_boxes_are_refused(tmp_path, pos, what):
    frames = _frames(extra={59: [dict(id=1, lbl='person', pos=[1, 2, 41, 100]),
                                 dict(id=2, lbl='people', pos=pos)]})
    src = make_release(tmp_path / 'src', frames=frames)
    with pytest.raises(ValueError, match=r'V000\.vbb: frame 59 \(0-based\), object 1 \(id 2, '
                       rf"'people'\): pos \[l, t, w, h\] = .* has {what}"):
        convert_caltech(src, str(tmp_path / 'out'), ['test'], progress=False)
    # negative l, t are legitimate (boxes cut by the image border)
    frames[59][1]['pos'] = [-5, -3, 41, 100]
    src = make_release(tmp_path / 'ok', frames=frames)
    assert convert_caltech(src, str(tmp_path / 'out2'), ['test'],
                           progress=False)['test'][6]['written'] == 2


def test_bad_video_name_is_refused(tmp_path):
    src = make_release(tmp_path / 'src', seq_names={0: 'Vabc'})
    with pytest.raises(ValueError, match=r'set06/Vabc\.seq: not a Caltech video file name '
                       r'\(expected V<number>\.seq'):
        convert_caltech(src, str(tmp_path / 'out'), ['test'], progress=False)


def test_label_with_a_space_names_the_vbb(tmp_path):
    frames = _frames(extra={29: [dict(id=2, lbl='person fa', pos=[1, 2, 41, 100])]})
    src = make_release(tmp_path / 'src', frames=frames)
    with pytest.raises(ValueError, match=r"V000\.vbb: frame 29 \(0-based\), object 0 \(id 2\): "
                       r"label 'person fa' is not one word.*'person_fa'"):
        convert_caltech(src, str(tmp_path / 'out'), ['test'], progress=False)
    assert not os.listdir(osp.join(tmp_path, 'out', 'annotations'))


def test_output_path_is_a_file_and_sets_outside_the_presets(tmp_path):
    src = make_release(tmp_path / 'src')
    out_file = tmp_path / 'out.txt'
    out_file.write_text('x')
    with pytest.raises(NotADirectoryError, match=r'output .*out\.txt exists and is not a folder'):
        convert_caltech(src, str(out_file), ['test'], progress=False)
    with pytest.raises(ValueError, match=r'sets \[99\] are in none of the chosen presets \(test: '
                       r'sets \[6, 7, 8, 9, 10\]\)'):
        convert_caltech(src, str(tmp_path / 'out'), ['test'], sets=[6, 99], progress=False)
    with pytest.raises(ValueError, match=r'preset train10x has none of the sets \[6\]'):
        convert_caltech(src, str(tmp_path / 'out'), ['train10x', 'test'], sets=[6],
                        progress=False)
    with pytest.raises(FileNotFoundError, match=r'source .*nowhere is not a folder'):
        convert_caltech(str(tmp_path / 'nowhere'), str(tmp_path / 'out'), ['test'],
                        progress=False)


def test_cli_errors_and_light_import(tmp_path):
    """The CLI: one line per error, exit 1; the conversion itself imports neither torch nor
    mmdet."""
    src = make_release(tmp_path / 'src')
    out_file = tmp_path / 'out.txt'
    out_file.write_text('x')

    env = dict(os.environ)

    def run(*args):
        return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                              cwd=ROOT, env=env)

    for args, msg in (((src, str(out_file)), 'out.txt exists and is not a folder'),
                      ((src, str(tmp_path / 'o'), '--presets', 'test', '--sets', '99'),
                       'sets [99] are in none of the chosen presets')):
        proc = run(*args, '--no-progress')
        assert proc.returncode == 1 and proc.stderr.startswith('error: ') and msg in proc.stderr
        assert 'Traceback' not in proc.stderr
    # a real conversion through the CLI, then the modules it loaded
    code = ('import runpy, sys\n'
            'sys.argv = sys.argv[1:]\n'
            'try:\n    runpy.run_path(sys.argv[0], run_name="__main__")\n'
            'except SystemExit as e:\n    assert not e.code, e.code\n'
            'print(sorted(m for m in ("torch", "mmdet", "mmengine") if m in sys.modules))')
    proc = subprocess.run([sys.executable, '-c', code, TOOL, src, str(tmp_path / 'o'),
                           '--presets', 'test', '--no-progress'], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert 'set06' in proc.stdout and osp.isfile(tmp_path / 'o' / 'test.txt')
    assert proc.stdout.strip().splitlines()[-1] == '[]', proc.stdout + proc.stderr


def _noisy_jpegs(n, seed=0, quality=90):
    """Frames of ~70 kB each: a 60-frame .seq of ~4 MB, so frame 29 lies between the first and
    the last MiB that the quick fingerprint hashes."""
    rng = np.random.default_rng(seed)
    return [cv2.imencode('.jpg', rng.integers(0, 256, (240, 320, 3), np.uint8),
                         [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes() for _ in range(n)]


def test_frame_replaced_mid_seq_at_the_same_size_needs_verify(tmp_path):
    """Issue 24: a frame replaced in the middle of a .seq by one of the same size was not
    reconverted (the fingerprint hashes the size and the first and last MiB only). The docs say
    so, and --verify hashes every byte and converts the video again."""
    jpgs = _noisy_jpegs(N_FRAMES)
    src = make_release(tmp_path / 'src', jpgs=jpgs)
    out = str(tmp_path / 'out')
    assert convert_caltech(src, out, ['test'], progress=False)['test'][6]['written'] == 2
    seq = osp.join(src, 'set06', 'V000.seq')
    with cio.SeqReader(seq) as r:
        offset, size = int(r._offsets[29]), int(r._sizes[29])
    file_size = osp.getsize(seq)
    assert (1 << 20) < offset and offset + size < file_size - (1 << 20)
    # another picture, padded with zeros after its end marker to the same number of bytes
    new = _noisy_jpegs(1, seed=1, quality=60)[0]
    assert len(new) < size
    new += bytes(size - len(new))
    with open(seq, 'r+b') as f:
        f.seek(offset)
        f.write(new)
    assert osp.getsize(seq) == file_size
    img = osp.join(out, 'images', 'set06_V000_I00029.jpg')
    # the default re-run compares the size and both ends: the stale frame is kept (documented)
    assert convert_caltech(src, out, ['test'], progress=False)['test'][6]['written'] == 0
    with open(img, 'rb') as f:
        assert f.read() == jpgs[29]
    # --verify hashes the whole file: the video is converted again from the new bytes
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, TOOL, src, out, '--presets', 'test', '--verify',
                           '--no-progress'], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert ('4 output files of set06/V000 were converted from a different source (--verify: the '
            'SHA-256 of the whole .seq differs from the one recorded' in proc.stderr)
    with open(img, 'rb') as f:
        assert f.read() == new
    assert proc.stdout.splitlines()[-1].split()[-1] == '2'  # 'test all ... written'
    # and verified again, nothing left to do
    assert convert_caltech(src, out, ['test'], progress=False,
                           verify=True)['test'][6]['written'] == 0


def test_verify_reconverts_a_record_without_the_whole_file_hash(tmp_path):
    """A record of an older converter (no hash of the whole .seq) cannot be verified."""
    src = make_release(tmp_path / 'src')
    out = str(tmp_path / 'out')
    convert_caltech(src, out, ['test'], progress=False)
    path = osp.join(out, SOURCES_FILE)
    with open(path) as f:
        record = json.load(f)
    del record['videos']['set06/V000']['seq']['sha256']
    with open(path, 'w') as f:
        json.dump(record, f)
    assert convert_caltech(src, out, ['test'], progress=False)['test'][6]['written'] == 0
    with pytest.warns(UserWarning, match=r'converted without a hash of the whole \.seq \(older '
                      r'converter\), so --verify cannot check them'):
        counts = convert_caltech(src, out, ['test'], progress=False, verify=True)
    assert counts['test'][6]['written'] == 2
    with open(path) as f:
        assert 'sha256' in json.load(f)['videos']['set06/V000']['seq']


def test_converter_writes_through_the_atomic_writer(tmp_path):
    """The converter wrote each frame to '<name>.part' (following a symlink planted there) and
    renamed it; now it writes exclusive temporary files and leaves no '.part' behind."""
    src = make_release(tmp_path / 'src')
    out = tmp_path / 'out'
    (out / 'images').mkdir(parents=True)
    victim = tmp_path / 'victim.txt'
    victim.write_text('precious')
    os.symlink(victim, out / 'images' / 'set06_V000_I00029.jpg.part')
    convert_caltech(src, str(out), ['test'], progress=False)
    assert victim.read_text() == 'precious'
    with open(out / 'images' / 'set06_V000_I00029.jpg', 'rb') as f:
        assert f.read() == _jpeg(29)
    assert not osp.islink(out / 'images' / 'set06_V000_I00029.jpg')
    made = [n for d in ('images', 'annotations') for n in os.listdir(out / d)]
    assert sorted(n for n in made if n.endswith('.part')) == ['set06_V000_I00029.jpg.part']


def _rewrite_vbb(path, edit):
    import scipy.io
    A = scipy.io.loadmat(path)['A']
    edit(A[0, 0])
    scipy.io.savemat(path, {'A': A})


def test_numeric_vbb_label_is_refused(tmp_path):
    """Issue 24: a number in objLbl became the label '7.0' (str of the number) and was
    converted; now it is refused, naming the file and the object id."""
    src = make_release(tmp_path / 'src')
    vbb = osp.join(src, 'annotations', 'set06', 'V000.vbb')

    def edit(A):
        A['objLbl'][0, 0] = np.array([[7.0]])

    _rewrite_vbb(vbb, edit)
    with pytest.raises(ValueError, match=r'V000\.vbb: the label of object id 1 \(objLbl entry 0\) '
                       r"is not a string but \[7\.0\] \(float64\); a vbb label is a text such "
                       r"as 'person'"):
        convert_caltech(src, str(tmp_path / 'out'), ['test'], progress=False)
    assert not os.listdir(tmp_path / 'out' / 'annotations')


def test_zero_size_vbb_box_is_refused(tmp_path):
    frames = _frames(extra={59: [dict(id=1, lbl='person', pos=[1, 2, 41, 100]),
                                 dict(id=2, lbl='people', pos=[100, 100, 0, 50])]})
    src = make_release(tmp_path / 'src', frames=frames)
    with pytest.raises(ValueError, match=r"V000\.vbb: frame 59 \(0-based\), object 1 \(id 2, "
                       r"'people'\): pos \[l, t, w, h\] = \[100, 100, 0, 50\] has a zero or "
                       r'negative width or height'):
        convert_caltech(src, str(tmp_path / 'out'), ['test'], progress=False)
