"""caltech_io: .seq, .vbb and bbGt round trips and bad-input errors that name the file."""
import os
import os.path as osp
import struct

import cv2
import numpy as np
import pytest
import scipy.io

from mmmimic.datasets import caltech_io as cio


def _jpegs(n, size=(24, 32)):
    return [cv2.imencode('.jpg', np.full(size + (3, ), 30 * i, np.uint8))[1].tobytes()
            for i in range(n)]


def test_seq_round_trip(tmp_path):
    jpgs = _jpegs(4)
    path = str(tmp_path / 'V000.seq')
    cio.write_seq(path, jpgs, 32, 24, fps=25)
    with cio.SeqReader(path) as r:
        assert (r.width, r.height, r.num_frames, r.fps, len(r), r.extra) == (32, 24, 4, 25, 4, 8)
        assert list(r) == jpgs and r[-1] == jpgs[-1]
        with pytest.raises(IndexError):
            r[4]
    with open(path, 'rb') as f:
        head = f.read(1024)
    assert struct.unpack_from('<I', head, 0)[0] == 0xFEED
    assert head[4:24].decode('utf-16-le') == 'Norpix seq'
    assert struct.unpack_from('<9I', head, 548)[5] == 102


def test_seq_extra_16(tmp_path):
    """Files with 16 bytes after each frame (timestamp + 8 zero bytes) are detected."""
    jpgs = _jpegs(3)
    path = str(tmp_path / 'V001.seq')
    cio.write_seq(path, jpgs, 32, 24)
    with open(path, 'rb') as f:
        data = f.read()
    out, pos = bytearray(data[:1024]), 1024
    for j in jpgs:
        n = len(j) + 4
        out += data[pos:pos + n + 8] + bytes(8)
        pos += n + 8
    with open(path, 'wb') as f:
        f.write(out)
    r = cio.SeqReader(path)
    assert r.extra == 16 and list(r) == jpgs


def test_seq_truncated_and_corrupt(tmp_path):
    path = str(tmp_path / 'V002.seq')
    cio.write_seq(path, _jpegs(5), 32, 24)
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:-20])
    with pytest.raises(ValueError, match=r'V002\.seq: frame 4 extends past end of file'):
        cio.SeqReader(path)
    with open(path, 'wb') as f:
        f.write(data[:1024 + 10])
    with pytest.raises(ValueError, match=r'V002\.seq: frame 0 extends past end of file'):
        cio.SeqReader(path)
    bad = bytearray(data)
    bad[1024 + 4] = 0  # first frame no longer starts with FF D8
    with open(path, 'wb') as f:
        f.write(bad)
    with pytest.raises(ValueError, match=r'V002\.seq: frame 0 .* is not a JPEG'):
        cio.SeqReader(path)
    with open(path, 'wb') as f:
        f.write(b'\0' * 2000)
    with pytest.raises(ValueError, match=r'V002\.seq: not a \.seq file \(magic'):
        cio.SeqReader(path)
    with pytest.raises(ValueError, match='not a JPEG'):
        cio.write_seq(path, [b'PNG...'], 1, 1)


VBB = [[dict(id=1, lbl='person', pos=[1, 2, 3, 4], posv=[0, 0, 0, 0], occl=0)], [],
       [dict(id=1, lbl='person', pos=[1.5, 2, 3, 4], posv=[1, 2, 3, 2], occl=1),
        dict(id=2, lbl='people', pos=[5, 5, 5, 5], posv=[0, 0, 0, 0], occl=0)]]


def test_vbb_round_trip_and_layout(tmp_path):
    path = str(tmp_path / 'V000.vbb')
    cio.write_vbb(path, VBB)
    frames = cio.read_vbb(path)
    assert len(frames) == 3 and frames[1] == []
    assert frames[2][0] == dict(id=1, lbl='person', pos=[1.5, 2, 3, 4], posv=[1, 2, 3, 2], occl=1)
    assert frames[2][1]['lbl'] == 'people'
    # the positional layout third-party readers rely on: index 1 objLists, 4 objLbl
    A = scipy.io.loadmat(path)['A'][0][0]
    assert [str(v[0]) for v in A[4][0]] == ['person', 'people']
    obj = A[1][0][2]
    assert int(obj['id'][0][1][0][0]) == 2 and obj['pos'][0][0][0].tolist() == [1.5, 2, 3, 4]
    assert A['objStr'][0].tolist() == [1, 3] and A['objEnd'][0].tolist() == [3, 3]


def test_vbb_errors(tmp_path):
    path = str(tmp_path / 'bad.vbb')
    with open(path, 'w') as f:
        f.write('not a mat file')
    with pytest.raises(ValueError, match=r'bad\.vbb: not a vbb file'):
        cio.read_vbb(path)
    scipy.io.savemat(path, {'B': np.zeros(2)})
    with pytest.raises(ValueError, match=r'bad\.vbb: not a vbb file \(no struct A; variables: '
                       r"\['B'\]"):
        cio.read_vbb(path)
    with pytest.raises(ValueError, match='has labels'):
        cio.write_vbb(path, [[dict(id=1, lbl='person', pos=[0, 0, 1, 1])],
                             [dict(id=1, lbl='people', pos=[0, 0, 1, 1])]])


def test_bbgt_round_trip_and_versions(tmp_path):
    path = str(tmp_path / 'set06_V000_I00029.txt')
    objs = [dict(lbl='person', pos=[1, 2.25, 3, 4], occl=1, posv=[1, 2, 3, 1]),
            dict(lbl='ignore', pos=[0, 0, 10, 10], ign=1, ang=5)]
    cio.write_bbgt(path, objs)
    lines = open(path).read().splitlines()
    assert lines == ['% bbGt version=3', 'person 1 2.25 3 4 1 1 2 3 1 0 0',
                     'ignore 0 0 10 10 0 0 0 0 0 1 5']
    back = cio.read_bbgt(path)
    assert back[0]['pos'] == [1, 2.25, 3, 4] and back[1]['ign'] == 1 and back[1]['ang'] == 5
    with open(path, 'w') as f:
        f.write('% bbGt version=0\nperson 1 2 3 4\n')
    assert cio.read_bbgt(path)[0]['posv'] == [0, 0, 0, 0]
    assert cio.bbgt_path(str(tmp_path), 'set06_V000_I00029') == path


@pytest.mark.parametrize('text,match', [
    ('', r'not a bbGt file'),
    ('person 1 2 3 4\n', r'not a bbGt file'),
    ('% bbGt version=9\n', r'unsupported bbGt version'),
    ('% bbGt version=3\nperson 1 2 3 4 0 0 0 0 0 0\n', r':2: expected 12 tokens'),
    ('% bbGt version=3\n\nperson 1 2 x 4 0 0 0 0 0 0 0\n', r':3: non-numeric'),
])
def test_bbgt_corrupt(tmp_path, text, match):
    path = str(tmp_path / 'corrupt.txt')
    with open(path, 'w') as f:
        f.write(text)
    with pytest.raises(ValueError, match=r'corrupt\.txt' + '.*' + match):
        cio.read_bbgt(path)


def test_result_files(tmp_path):
    path = str(tmp_path / 'set06' / 'V000.txt')
    rows = np.array([[30, 1.5, 2, 3, 4, np.float32(.7)], [60, 0, 0, 1, 1, 1e-7]])
    cio.write_result_file(path, rows)
    np.testing.assert_array_equal(cio.read_result_file(path), rows)  # exact round trip
    with open(path, 'a') as f:
        f.write('61 1 2 3\n')
    with pytest.raises(ValueError, match=r'V000\.txt:3: expected 6 numbers'):
        cio.read_result_file(path)
    assert osp.isfile(path)


def test_empty_result_file(tmp_path):
    """A detector that finds nothing in a video writes an empty file: zero rows, no error."""
    path = str(tmp_path / 'set06' / 'V001.txt')
    cio.write_result_file(path, np.zeros((0, 6)))
    assert osp.getsize(path) == 0
    assert cio.read_result_file(path).shape == (0, 6)
    with open(path, 'w') as f:
        f.write('\n  \n')
    assert cio.read_result_file(path).shape == (0, 6)


@pytest.mark.parametrize('line,match', [
    ('0,1,2,3,4,.5', r'V000\.txt:2: frame 0 is not a 1-based frame number'),
    ('-3,1,2,3,4,.5', r'V000\.txt:2: frame -3 is not a 1-based frame number'),
    ('29.5,1,2,3,4,.5', r'V000\.txt:2: frame 29.5 is not a 1-based frame number'),
    ('30,1,2,3,4,nan', r'V000\.txt:2: NaN/inf value in '),
    ('30,1,inf,3,4,.5', r'V000\.txt:2: NaN/inf value in '),
    ('nan,1,2,3,4,.5', r'V000\.txt:2: NaN/inf value in '),
])
def test_result_file_bad_frames_and_values(tmp_path, line, match):
    path = str(tmp_path / 'set06' / 'V000.txt')
    os.makedirs(osp.dirname(path))
    with open(path, 'w') as f:
        f.write('30,1,2,3,4,.9\n' + line + '\n')
    with pytest.raises(ValueError, match=match):
        cio.read_result_file(path)


def test_bbgt_non_finite(tmp_path):
    path = str(tmp_path / 'a.txt')
    with open(path, 'w') as f:
        f.write('% bbGt version=3\nperson 1 2 3 nan 0 0 0 0 0 0 0\n')
    with pytest.raises(ValueError, match=r'a\.txt:2: NaN/inf value in'):
        cio.read_bbgt(path)
