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


# ---------------------------------------------------------------------------------------------
# issue 24: untrusted files; every refusal names the file and the line (or frame and object)
# ---------------------------------------------------------------------------------------------
def _result_file(tmp_path, text):
    path = str(tmp_path / 'set06' / 'V000.txt')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path


@pytest.mark.parametrize('line,box', [
    ('30,141,200,-41,-100,.5', '[141, 200, -41, -100]'),  # inverted
    ('30,100,100,0,0,.5', '[100, 100, 0, 0]'),  # zero size
    ('30,100,100,0,100,.5', '[100, 100, 0, 100]'),  # zero width
    ('30,100,100,41,-100,.5', '[100, 100, 41, -100]'),  # negative height
])
def test_result_file_refuses_degenerate_boxes(tmp_path, line, box):
    path = _result_file(tmp_path, f'30,1,2,41,100,.9\n{line}\n')
    with pytest.raises(ValueError) as e:
        cio.read_result_file(path)
    assert str(e.value) == (f'{path}:2: detection [x, y, w, h] = {box} has a zero or negative '
                            f'width or height; refusing to score it')


def test_result_file_accepts_boxes_cut_by_the_border(tmp_path):
    """Negative x/y (a box starting outside the image) and negative scores are legitimate."""
    path = _result_file(tmp_path, '30,-5.5,-3,41,100,-1.25\n30,630,470,41,100,1e-7\n')
    np.testing.assert_array_equal(cio.read_result_file(path),
                                  [[30, -5.5, -3, 41, 100, -1.25], [30, 630, 470, 41, 100, 1e-7]])


@pytest.mark.parametrize('token,read_as', [('3_0', '30.0'), ('\u0663\u0660', '30.0'),
                                           ('\u06f3\u06f0', '30.0'), ('\uff13\uff10', '30.0')])
def test_result_file_refuses_underscores_and_non_ascii_digits(tmp_path, token, read_as):
    """Issue 24: float('3_0') and float('٣٠') are 30.0: the row was scored as frame 30."""
    path = _result_file(tmp_path, f'60,1,2,41,100,.9\n{token},100,100,41,100,.9\n')
    with pytest.raises(ValueError) as e:
        cio.read_result_file(path)
    assert str(e.value) == (
        f"{path}:2: non-numeric value {token!r} in '{token},100,100,41,100,.9'; Python's float() "
        f'would read it as {read_as}, but only ASCII digits without underscores are accepted')
    path = _result_file(tmp_path, '30,1_00,100,41,100,.9\n')
    with pytest.raises(ValueError, match=r"V000\.txt:1: non-numeric value '1_00' .* read it as "
                                         r'100\.0'):
        cio.read_result_file(path)


def _bbgt(tmp_path, body, version=3):
    path = str(tmp_path / 'set06_V000_I00029.txt')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(f'% bbGt version={version}\n' + body)
    return path


@pytest.mark.parametrize('line,msg', [
    ('person 141 200 -41 -100 0 0 0 0 0 0 0',
     "'person' pos [l, t, w, h] = [141, 200, -41, -100] has a zero or negative width or height"),
    ('person 100 100 0 100 0 0 0 0 0 0 0',
     "'person' pos [l, t, w, h] = [100, 100, 0, 100] has a zero or negative width or height"),
    ('people 100 100 41 100 1 100 100 -10 50 0 0',
     "'people' posv [l, t, w, h] = [100, 100, -10, 50] has a negative width or height"),
    ('person 100 100 41 100 0 0 0 0 0 0.5 0',
     "ign = 0.5 in 'person 100 100 41 100 0 0 0 0 0 0.5 0'; it must be 0 or 1"),
    ('person 100 100 41 100 2 0 0 0 0 0 0',
     "occ = 2 in 'person 100 100 41 100 2 0 0 0 0 0 0'; it must be 0 or 1"),
    ('person 1_00 100 41 100 0 0 0 0 0 0 0',
     "non-numeric value '1_00' in 'person 1_00 100 41 100 0 0 0 0 0 0 0'; Python's float() "
     'would read it as 100.0, but only ASCII digits without underscores are accepted'),
    ('person \u0661\u0660\u0660 100 41 100 0 0 0 0 0 0 0',
     "non-numeric value '\u0661\u0660\u0660' in"),
])
def test_bbgt_refuses_degenerate_boxes_and_odd_numbers(tmp_path, line, msg):
    """Issue 24: an inverted gt box was read, and the evaluation turned its person into an
    ignore region (MR-2 moved with no word); ign 0.5 was read as 0 (MATLAB: true)."""
    path = _bbgt(tmp_path, f'person 1 2 41 100 0 0 0 0 0 0 0\n{line}\n')
    with pytest.raises(ValueError) as e:
        cio.read_bbgt(path)
    assert str(e.value).startswith(f'{path}:3: {msg}')


def test_bbgt_accepts_border_boxes_and_unannotated_or_hidden_visible_parts(tmp_path):
    path = _bbgt(tmp_path, 'person -5 -2 41 100 1 0 0 0 0 0 0\nperson 5 2 41 100 1 9 9 0 0 0 0\n')
    objs = cio.read_bbgt(path)
    assert objs[0]['pos'] == [-5, -2, 41, 100] and objs[1]['posv'] == [9, 9, 0, 0]
    with pytest.raises(ValueError, match=r"unsupported bbGt version in '% bbGt version=\u0663'"):
        cio.read_bbgt(_bbgt(tmp_path, '', version='\u0663'))


def test_image_ids_and_video_names_take_ascii_digits_only():
    assert cio.parse_img_id('set06_V000_I00029') == (6, 0, 29)
    for bad in ('set\u0660\u0666_V000_I00029', 'set06_V000_I0002\u0669', 'set06_V000_I00029\n',
                'set06_V000_I3_0'):
        with pytest.raises(ValueError, match='is not a Caltech image id'):
            cio.parse_img_id(bad)
    with pytest.raises(ValueError, match='not a Caltech video file name'):
        cio.parse_video_name('set06/V\u0660\u0660\u0661.seq')


def test_image_list_refuses_repeated_and_malformed_ids(tmp_path):
    path = str(tmp_path / 'test.txt')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('set06_V000_I00029\n\n set06_V000_I00059 \nset06_V000_I00029\n')
    with pytest.raises(ValueError) as e:
        cio.read_image_list(path)
    assert str(e.value) == (f'{path}:4: image set06_V000_I00029 is listed twice (lines 1 and 4); '
                            f'every image must be listed once, or it is scored twice')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('set06_V000_I00029\nset\u0660\u0666_V000_I00059\n')
    with pytest.raises(ValueError, match=r"test\.txt:2: 'set\u0660\u0666_V000_I00059' is not a "
                                         r'Caltech image id'):
        cio.read_image_list(path)
    with open(path, 'w', encoding='utf-8') as f:
        f.write('set06_V000_I00029\n set06_V000_I00059 \n\n')
    assert cio.read_image_list(path) == ['set06_V000_I00029', 'set06_V000_I00059']


def _edit_vbb(path, edit):
    A = scipy.io.loadmat(path)['A']
    edit(A[0, 0])
    scipy.io.savemat(path, {'A': A})


def test_vbb_refuses_numeric_labels_and_non_integer_fields(tmp_path):
    """Issue 24: objLbl 7 became the label '7.0'; an id 'abc' raised a bare "invalid literal for
    int()"; an id '1' (text) was read as 1. Each message now names the file and the field."""
    path = str(tmp_path / 'V000.vbb')

    def check(edit, msg):
        cio.write_vbb(path, VBB)
        _edit_vbb(path, edit)
        with pytest.raises(ValueError) as e:
            cio.read_vbb(path)
        assert str(e.value) == f'{path}: {msg}'

    def label(A):
        A['objLbl'][0, 1] = np.array([[7.0]])

    check(label, "the label of object id 2 (objLbl entry 1) is not a string but [7.0] (float64); "
                 "a vbb label is a text such as 'person'")

    def field(name, value, frame=2, obj=1):
        def edit(A):
            A['objLists'][0, frame][0, obj][name] = value
        return edit

    check(field('id', np.array(['abc'])),
          "frame 2 (0-based), object 1: id must be a number, got ['abc'] (text)")
    check(field('id', np.array(['2'])),
          "frame 2 (0-based), object 1: id must be a number, got ['2'] (text)")
    check(field('id', np.array([[1.5]])),
          'frame 2 (0-based), object 1: id must be an integer >= 1, got 1.5')
    check(field('occl', np.array([[2.0]])),
          'frame 2 (0-based), object 1 (id 2): occl must be an integer 0..1, got 2.0')
    check(field('pos', np.array(['1 2 3 4'])),
          "frame 2 (0-based), object 1: pos must be a number, got ['1 2 3 4'] (text)")

    def n_frame(A):
        A['nFrame'] = np.array(['3'])

    check(n_frame, "nFrame must be a number, got ['3'] (text)")


def test_vbb_box_rules(tmp_path):
    path = str(tmp_path / 'V000.vbb')
    frames = [[dict(id=1, lbl='person', pos=[-5, -3, 41, 100], posv=[0, 0, 0, 0]),
               dict(id=2, lbl='person', pos=[5, 3, 41, 100], posv=[9, 9, 0, 0], occl=1)]]
    cio.write_vbb(path, frames)
    assert [o['pos'] for o in cio.read_vbb(path)[0]] == [[-5, -3, 41, 100], [5, 3, 41, 100]]
    frames[0][1]['pos'] = [5, 3, 41, 0]
    cio.write_vbb(path, frames)
    with pytest.raises(ValueError, match=r"V000\.vbb: frame 0 \(0-based\), object 1 \(id 2, "
                       r"'person'\): pos \[l, t, w, h\] = \[5, 3, 41, 0\] has a zero or negative "
                       r'width or height'):
        cio.read_vbb(path)


class _FramesThenCtrlC(list):
    """JPEG frames whose second pass (the write) is interrupted after the first frame."""

    def __init__(self, frames):
        super().__init__(frames)
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        for i, f in enumerate(list.__iter__(self)):
            if self.passes > 1 and i == 1:
                raise KeyboardInterrupt
            yield f


def test_writers_are_atomic_and_refuse_on_request(tmp_path):
    """A Ctrl-C while writing left a half-written .seq at the target; now the target keeps its
    old content and no temporary file is left."""
    path = str(tmp_path / 'V000.seq')
    cio.write_seq(path, _jpegs(2), 32, 24)
    with open(path, 'rb') as f:
        old = f.read()
    with pytest.raises(KeyboardInterrupt):
        cio.write_seq(path, _FramesThenCtrlC(_jpegs(3)), 32, 24)
    with open(path, 'rb') as f:
        assert f.read() == old
    assert os.listdir(tmp_path) == ['V000.seq']
    res = str(tmp_path / 'V001.txt')
    cio.write_result_file(res, [[30, 1, 2, 3, 4, .5]])
    with pytest.raises(FileExistsError, match=r'result file .*V001\.txt already exists; pass '
                                              r'--overwrite'):
        cio.write_result_file(res, np.zeros((0, 6)), overwrite=False)
    assert cio.read_result_file(res).shape == (1, 6)
    for writer, name, arg in ((cio.write_bbgt, 'a.txt', []), (cio.write_vbb, 'V002.vbb', [[]])):
        p = str(tmp_path / name)
        writer(p, arg)
        with pytest.raises(FileExistsError, match='already exists'):
            writer(p, arg, overwrite=False)
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.part')]
