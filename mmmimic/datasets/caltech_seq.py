# Copyright (c) mmmimic contributors. All rights reserved.
"""The Caltech ``.seq`` format: Norpix sequence of JPEG frames (toolbox
``videos/seqReaderPlugin.m``). Its names are re-exported by :mod:`.caltech_io`.

Every frame is untrusted: :func:`check_frame` checks it before it is written. numpy only (cv2
for the optional frame decode check): importable without torch or mmdet.
"""
import os
import os.path as osp
import struct
from typing import Iterator, Sequence

import numpy as np

from mmmimic.fileio import atomic_output

SEQ_MAGIC = 0xFEED
SEQ_HEADER_SIZE = 1024
#: image formats whose frames are stored as variable-size compressed images
SEQ_JPEG_FORMATS = (102, 201)
SEQ_PNG_FORMATS = (1, 2)
SEQ_RAW_FORMATS = (100, 200, 101)


def write_seq(path: str,
              jpeg_frames: Sequence[bytes],
              width: int,
              height: int,
              fps: float = 30.0,
              overwrite: bool = True) -> None:
    """Write JPEG frames as a Norpix ``.seq`` file (version 3, image format 102).

    Each frame is stored as a uint32 size (its own 4 bytes included), the JPEG bytes and an
    8-byte timestamp (uint32 seconds, uint16 milliseconds, 2 bytes padding), as in Caltech's files.

    Args:
        path: output file.
        jpeg_frames: encoded JPEG images (``FF D8 ... FF D9``), e.g. from ``cv2.imencode``.
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frame rate stored in the header; timestamps are ``i / fps`` seconds.
        overwrite: replace an existing ``path`` (False: refuse it). The file is written
            atomically (:func:`mmmimic.fileio.atomic_output`).
    """
    header = bytearray(SEQ_HEADER_SIZE)
    struct.pack_into('<I', header, 0, SEQ_MAGIC)
    name = 'Norpix seq'.encode('utf-16-le')
    header[4:4 + len(name)] = name
    struct.pack_into('<iI', header, 28, 3, SEQ_HEADER_SIZE)
    true_size = 0
    for i, jpg in enumerate(jpeg_frames):
        if bytes(jpg[:2]) != b'\xff\xd8':
            raise ValueError(f'write_seq({path!r}): frame {i} is not a JPEG (no FF D8 marker)')
        true_size = max(true_size, len(jpg) + 4 + 8)
    struct.pack_into('<9I', header, 548, width, height, 24, 8, width * height * 3, 102,
                     len(jpeg_frames), 0, true_size)
    struct.pack_into('<d', header, 584, float(fps))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with atomic_output(path, overwrite, '.seq file') as tmp, open(tmp, 'wb') as f:
        f.write(header)
        for i, jpg in enumerate(jpeg_frames):
            t = i / fps
            sec = int(t)
            f.write(struct.pack('<I', len(jpg) + 4))
            f.write(bytes(jpg))
            f.write(struct.pack('<IHH', sec, int(round((t - sec) * 1000)) % 1000, 0))


class SeqReader:
    """Random access to the frames of a Norpix ``.seq`` file (JPEG or PNG frames).

    The whole frame index is built (and checked) on construction, so a truncated or corrupt file
    fails before any frame is used.

    Args:
        path: the ``.seq`` file.

    Attributes:
        width, height, num_frames, fps: from the header; ``num_frames`` is the number of frames
            actually present (it is an error for the file to hold fewer than the header says).
        image_format: the Norpix image format code (102/201 JPEG, 1/2 PNG).
        extra: bytes after each image (8 or 16), detected once as the toolbox does.

    Raises:
        ValueError: not a seq file, unsupported image format, or truncated/corrupt frames; the
            message names the file and the frame at fault.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = None  # set first: __del__ runs even when the header check below fails
        size = osp.getsize(path)
        with open(path, 'rb') as f:
            header = f.read(SEQ_HEADER_SIZE)
            if len(header) < SEQ_HEADER_SIZE:
                raise ValueError(f'{path}: not a .seq file (only {len(header)} bytes, the header '
                                 f'alone has {SEQ_HEADER_SIZE})')
            magic, = struct.unpack_from('<I', header, 0)
            if magic != SEQ_MAGIC:
                raise ValueError(f'{path}: not a .seq file (magic number {magic:#x}, '
                                 f'expected {SEQ_MAGIC:#x})')
            self.version, header_size = struct.unpack_from('<iI', header, 28)
            (self.width, self.height, self.bit_depth, _, self.image_size_bytes, self.image_format,
             num_frames, _, _) = struct.unpack_from('<9I', header, 548)
            self.fps, = struct.unpack_from('<d', header, 584)
            if self.image_format in SEQ_RAW_FORMATS:
                raise ValueError(f'{path}: raw image format {self.image_format} is not supported '
                                 f'(only JPEG 102/201 and PNG 1/2)')
            if self.image_format not in SEQ_JPEG_FORMATS + SEQ_PNG_FORMATS:
                raise ValueError(f'{path}: unknown image format {self.image_format}')
            self._offsets, self._sizes, self.extra = self._index(f, size, num_frames)
        self.num_frames = len(self._offsets)

    def _index(self, f, size: int, num_frames: int):
        offsets = np.zeros(num_frames, dtype=np.int64)
        sizes = np.zeros(num_frames, dtype=np.int64)
        magic = b'\xff\xd8' if self.image_format in SEQ_JPEG_FORMATS else b'\x89P'
        pos, extra = SEQ_HEADER_SIZE, 8
        for i in range(num_frames):
            f.seek(pos)
            raw = f.read(4)
            if len(raw) < 4:
                raise ValueError(f'{self.path}: truncated: the header announces {num_frames} '
                                 f'frames but the file ends before frame {i} (at byte {pos})')
            n, = struct.unpack('<I', raw)
            if n <= 4 or pos + n > size:
                raise ValueError(f'{self.path}: frame {i} extends past end of file (size field '
                                 f'{n} at byte {pos}, file has {size} bytes)')
            if f.read(2) != magic:
                raise ValueError(f'{self.path}: frame {i} at byte {pos + 4} is not a '
                                 f'{"JPEG" if magic[0] == 0xFF else "PNG"} image')
            offsets[i], sizes[i] = pos + 4, n - 4
            if i == 0:
                # seqReaderPlugin: 16 bytes of extra data if the uint32 after the timestamp is 0
                f.seek(pos + n + 8)
                nxt = f.read(4)
                extra = 16 if (len(nxt) == 4 and struct.unpack('<I', nxt)[0] == 0) else 8
            pos += n + extra
        return offsets, sizes, extra

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> bytes:
        if index < 0:
            index += self.num_frames
        if not 0 <= index < self.num_frames:
            raise IndexError(f'{self.path}: frame {index} out of range (0..{self.num_frames - 1})')
        if self._file is None:
            self._file = open(self.path, 'rb')
        self._file.seek(int(self._offsets[index]))
        return self._file.read(int(self._sizes[index]))

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.num_frames):
            yield self[i]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> 'SeqReader':
        return self

    def __exit__(self, *args) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_file'] = None
        return state


def check_frame(data: bytes, where: str, decode: bool = True) -> None:
    """Check that one stored frame is a whole image before it is copied out of a ``.seq``.

    JPEG: starts with the SOI marker ``FF D8`` and ends with the EOI marker ``FF D9`` (zero
    padding after it is allowed), which catches truncated and overwritten frames. PNG: starts
    with the PNG signature. With ``decode``, the frame is also decoded by OpenCV at 1/8 scale in
    grayscale (the cheap path; its cost per frame is measured in docs/user_guides/caltech.md),
    which catches
    a corrupt header, Huffman tables or a body cut short. A JPEG has no checksum: flipped bits
    inside the compressed body still decode and cannot be detected.

    Args:
        data: the frame's bytes.
        where: names the frame in the message (file and frame index).
        decode: also decode the image.

    Raises:
        ValueError: naming ``where`` and the fault.
    """
    head = bytes(data[:8])
    if head[:2] == b'\xff\xd8':
        tail = bytes(data).rstrip(b'\x00')[-2:]
        if tail != b'\xff\xd9':
            raise ValueError(f'{where}: corrupt JPEG: no end marker FF D9 (ends with '
                             f'{tail.hex(" ")}; truncated or overwritten frame of {len(data)} '
                             f'bytes)')
    elif head != b'\x89PNG\r\n\x1a\n':
        raise ValueError(f'{where}: not a JPEG (FF D8) or PNG image (starts with '
                         f'{head[:4].hex(" ")})')
    if decode:
        import cv2
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
        if img is None or img.size == 0:
            raise ValueError(f'{where}: corrupt image: OpenCV cannot decode its {len(data)} bytes')
