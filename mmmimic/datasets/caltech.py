"""Caltech Pedestrian frames with per-frame bbGt annotations, as an mmdet dataset."""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path

from .caltech_io import (CALTECH_IMG_ID, FRAME_PRESETS, bbgt_path, parse_img_id, read_bbgt,
                         read_image_list)

__all__ = ['CALTECH_IMG_ID', 'FRAME_PRESETS', 'CaltechPedestrianDataset', 'parse_img_id']


@DATASETS.register_module()
class CaltechPedestrianDataset(BaseDetDataset):
    """Caltech Pedestrian frames (``setXX_VYYY_I%05d.jpg``) with one bbGt text file per frame.

    Reads the output of the converter (:mod:`mmmimic.datasets.caltech_converter`,
    ``tools/dataset_converters/caltech.py``) or the new annotations of
    Zhang et al. (``<id>.txt`` for training, ``<id>.jpg.txt`` for the test set: both are found).

    Every object becomes an instance with ``bbox`` (xyxy), ``bbox_label`` 0 and ``ignore_flag``
    (1 unless the label is ``person`` and the bbGt ``ign`` column is 0; the Caltech metric
    re-applies the exact rules of each experiment), plus the raw fields the metric needs:
    ``lbl`` (original label), ``bbox_vis`` (visible part, xyxy, all zero when not annotated) and
    ``occl``. Each data info also carries ``ann_path``: add it to ``PackDetInputs``'s
    ``meta_keys`` in the test pipeline, and :class:`~mmmimic.evaluation.CaltechMRMetric` reads
    the raw annotation of every image from there (mmdet's packing keeps only boxes and labels).

    Args:
        ann_file: text file listing image ids (one per line, as written by the converter, e.g.
            ``test.txt``); empty: every annotation file in ``data_prefix['ann']``.
        data_prefix: ``img`` (image folder) and ``ann`` (bbGt folder), relative to data_root.
        sets: keep only these set numbers (e.g. ``range(6, 11)``); None keeps all.
        img_shape: (height, width) of the frames, for aspect-ratio grouping (Caltech: 480x640).
        filter_cfg: ``filter_empty_gt=True`` drops frames without a non-ignored instance (the
            paper trains on frames with pedestrians only); never applied in test mode.
        **kwargs: see :class:`mmdet.datasets.BaseDetDataset`.
    """

    METAINFO = dict(classes=('person', ), palette=[(220, 20, 60)])

    def __init__(self,
                 ann_file: str = '',
                 data_prefix: dict = dict(img='images/', ann='annotations/'),
                 sets: Optional[Sequence[int]] = None,
                 img_shape: Tuple[int, int] = (480, 640),
                 **kwargs) -> None:
        self.sets = None if sets is None else set(int(s) for s in sets)
        self.img_shape = tuple(img_shape)
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def _image_ids(self) -> List[str]:
        if self.ann_file:
            with get_local_path(self.ann_file, backend_args=self.backend_args) as local:
                return read_image_list(local)  # refuses malformed and repeated ids
        ann_dir = self.data_prefix['ann']
        if not osp.isdir(ann_dir):
            raise FileNotFoundError(f'CaltechPedestrianDataset: annotation folder {ann_dir} '
                                    f'does not exist (data_prefix["ann"])')
        ids = set()
        for name in os.listdir(ann_dir):
            for suffix in ('.jpg.txt', '.txt'):
                if name.endswith(suffix):
                    ids.add(name[:-len(suffix)])
                    break
        return sorted(ids)

    def load_data_list(self) -> List[dict]:
        """One data info per listed image (all of them: empty frames are filtered later).

        Returns:
            list of data infos (``img_path``, ``img_id``, ``ann_path``, ``height``, ``width``,
            ``instances``).
        """
        if 'img' not in self.data_prefix or 'ann' not in self.data_prefix:
            raise KeyError(f'CaltechPedestrianDataset needs data_prefix with "img" and "ann", '
                           f'got {self.data_prefix}')
        data_list = []
        for img_id in self._image_ids():
            if self.sets is not None and parse_img_id(img_id)[0] not in self.sets:
                continue
            ann_path = bbgt_path(self.data_prefix['ann'], img_id)
            if ann_path is None:
                raise FileNotFoundError(
                    f'CaltechPedestrianDataset: no annotation {img_id}.txt or {img_id}.jpg.txt in '
                    f'{self.data_prefix["ann"]} (listed in {self.ann_file or "the folder"})')
            data_list.append(self.parse_data_info(dict(img_id=img_id, ann_path=ann_path)))
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        """Read one bbGt file into mmdet's data info format.

        Args:
            raw_data_info: ``img_id`` and ``ann_path``.

        Returns:
            the data info of the image.
        """
        img_id, ann_path = raw_data_info['img_id'], raw_data_info['ann_path']
        instances = []
        for o in read_bbgt(ann_path):
            x, y, w, h = o['pos']
            vx, vy, vw, vh = o['posv']
            instances.append(
                dict(
                    bbox=[x, y, x + w, y + h],
                    bbox_label=0,
                    ignore_flag=int(o['lbl'] != 'person' or bool(o['ign'])),
                    lbl=o['lbl'],
                    bbox_vis=[vx, vy, vx + vw, vy + vh],
                    occl=o['occl']))
        return dict(
            img_path=osp.join(self.data_prefix['img'], img_id + '.jpg'),
            img_id=img_id,
            ann_path=ann_path,
            height=self.img_shape[0],
            width=self.img_shape[1],
            instances=instances)

    def filter_data(self) -> List[dict]:
        """Drop frames without a non-ignored instance if ``filter_empty_gt`` (training only)."""
        if self.test_mode or not (self.filter_cfg or {}).get('filter_empty_gt', False):
            return self.data_list
        return [
            d for d in self.data_list if any(not i['ignore_flag'] for i in d['instances'])
        ]
