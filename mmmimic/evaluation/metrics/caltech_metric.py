"""Caltech Pedestrian log-average miss rate (MR-2 / MR-4) and AP as an mmengine metric."""
import logging
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from mmmimic.datasets.caltech import parse_img_id
from mmmimic.datasets.caltech_io import read_bbgt, write_result_file
from ..functional.caltech_eval import CALTECH_BORDER, evaluate_caltech, get_setting
from ..functional.caltech_plot import plot_mr_fppi


def _to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)


def load_caltech_gt(ann_path: str) -> Dict:
    """Raw annotation of one image for :func:`evaluate_caltech`, from its bbGt file."""
    objs = read_bbgt(ann_path)
    return dict(
        bboxes=np.array([o['pos'] for o in objs], np.float64).reshape(-1, 4),
        bboxes_vis=np.array([o['posv'] for o in objs], np.float64).reshape(-1, 4),
        labels=[o['lbl'] for o in objs],
        ignore=np.array([o['ign'] for o in objs], bool))


@METRICS.register_module()
class CaltechMRMetric(BaseMetric):
    """Log-average miss rate of the official Caltech toolbox (dbEval, code 3.2.1), in %.

    Ground truth: the raw bbGt annotation of each image, read from the path in the data
    sample's ``ann_path`` meta key (``CaltechPedestrianDataset`` sets it; add ``'ann_path'`` to
    ``PackDetInputs``'s ``meta_keys`` as ``configs/_base_/datasets/caltech.py`` does). The raw
    file is needed because each experiment setting re-derives ignore regions from labels,
    heights and visible boxes, which mmdet's packed ``gt_instances`` do not carry.

    Detections: ``pred_instances`` (``bboxes`` xyxy in original image coordinates, as mmdet's
    ``predict(rescale=True)`` returns them, and ``scores``), all of them (no score threshold)
    except boxes of zero or negative width or height (e.g. a box clipped to the image border):
    those are dropped, and counted in a warning, because the result files (and their reader)
    refuse them, and the scores must stay the same when the result files are scored offline.

    Each image must be evaluated once: an image id seen twice (an image list that repeats it)
    is refused. Plots and result files are written atomically (no partial file after an
    interruption); a file already in ``outfile_prefix`` that this metric did not write itself
    (an earlier evaluation's) is replaced with a warning naming how many.

    Reported keys, in %: ``caltech/<setting>_MR-2`` and ``..._MR-4`` (lower is better: use
    ``save_best='caltech/Reasonable_MR-2', rule='less'``), and ``caltech/<setting>_AP<iou>``
    (``Reasonable_AP50``; ``Overlap=75_AP75``): the average precision of the same matched
    detections at the setting's IoU threshold (all-point interpolation, higher is better; see
    :func:`~mmmimic.evaluation.functional.average_precision`). AP uses every detection, the
    miss rates only those up to 1 false positive per image, so AP varies less between seeds.

    Args:
        settings: dbEval experiment names (``Reasonable``, ``All``, ``Scale=far``, ``Occ=heavy``,
            ``Overlap=75`` ...) or custom dicts (see :func:`get_setting`); checked when the
            metric is built (an unknown name raises ``KeyError`` listing the valid ones).
        resize_dets: resize detections to aspect 0.41 before matching (Caltech code 3.2.1: on;
            some later evaluations turn it off).
        log_floor: None (dbEval: a miss rate of 0 gives MR 0) or 1e-10 (acfTest convention).
        border: gt border ``[x0, y0, x1, y1]`` (dbEval: 5 px inside 640x480).
        outfile_prefix: folder for the curve PNG and result files; None: the log folder of the
            current run (``work_dir/<timestamp>/``), or nothing when there is none.
        plot: save ``caltech_<setting>_mr_fppi.png`` per setting.
        save_result_files: also write the detections as ``<outfile_prefix>/res/<algorithm>/
            setXX/VYYY.txt`` (official layout, 1-based frames) for the scoring tool or MATLAB.
        algorithm: the algorithm name used in result folders and plot legends.
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric`.
    """

    default_prefix: Optional[str] = 'caltech'

    def __init__(self,
                 settings: Sequence[Union[str, Dict]] = ('Reasonable', ),
                 resize_dets: bool = True,
                 log_floor: Optional[float] = None,
                 border: Optional[Sequence[float]] = CALTECH_BORDER,
                 outfile_prefix: Optional[str] = None,
                 plot: bool = True,
                 save_result_files: bool = False,
                 algorithm: str = 'mmmimic',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(settings, (str, dict)):
            raise ValueError(f'CaltechMRMetric: settings must be a list of setting names or '
                             f'dicts, got {settings!r} (write [{settings!r}])')
        for setting in settings:  # a typo fails at build time, not after the whole test loop
            try:
                get_setting(setting if isinstance(setting, str) else
                            {k: v for k, v in setting.items() if k != 'name'})
            except KeyError as e:
                raise KeyError(f'CaltechMRMetric: {e.args[0]}') from None
        self.settings = list(settings)
        self.resize_dets = resize_dets
        self.log_floor = log_floor
        self.border = border
        self.outfile_prefix = outfile_prefix
        self.plot = plot
        self.save_result_files = save_result_files
        self.algorithm = algorithm
        self._written = set()  # files this metric wrote: replaced without a word next time

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each image's detections (xywh + score) and raw ground truth.

        Args:
            data_batch: unused.
            data_samples: outputs of the model, as dicts (``pred_instances``, meta keys).
        """
        for ds in data_samples:
            ann_path = ds.get('ann_path')
            if ann_path is None:
                raise KeyError(
                    f'CaltechMRMetric: the data sample of {ds.get("img_path")} has no '
                    f'"ann_path"; use CaltechPedestrianDataset and add "ann_path" to the meta_keys '
                    f'of PackDetInputs (see configs/_base_/datasets/caltech.py)')
            pred = ds['pred_instances']
            b = _to_numpy(pred['bboxes']).astype(np.float64).reshape(-1, 4)
            s = _to_numpy(pred['scores']).astype(np.float64).reshape(-1)
            with np.errstate(invalid='ignore'):  # inf - inf: refused just below
                dt = np.c_[b[:, :2], b[:, 2:] - b[:, :2], s]
            img_id = ds.get('img_id') or osp.splitext(osp.basename(ds.get('img_path', '')))[0]
            bad = int(np.count_nonzero(~np.isfinite(dt).all(axis=1)))
            if bad:
                raise ValueError(f'CaltechMRMetric: image {img_id} ({ds.get("img_path")}): {bad} '
                                 f'of {len(dt)} detections have NaN/inf boxes or scores; refusing '
                                 f'to score them')
            empty = (dt[:, 2] <= 0) | (dt[:, 3] <= 0)
            self.results.append(dict(img_id=str(img_id), gt=load_caltech_gt(ann_path),
                                     dt=dt[~empty], dropped=int(np.count_nonzero(empty))))

    def _out_dir(self) -> Optional[str]:
        if self.outfile_prefix is not None:
            return self.outfile_prefix
        # a Runner's logger writes to work_dir/<timestamp>/<timestamp>.log
        log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
        return osp.dirname(log_file) if log_file else None

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Run :func:`evaluate_caltech` on all images; save the curves and result files.

        Args:
            results: the collected per-image dicts.

        Returns:
            ``{'<setting>_MR-2': %, '<setting>_MR-4': %, '<setting>_AP<iou>': %}`` per
            setting (``<iou>``: the setting's IoU threshold in %, 50 for ``Reasonable``).
        """
        logger = MMLogger.get_current_instance()
        first: Dict[str, int] = {}
        for i, r in enumerate(results):
            j = first.setdefault(r['img_id'], i)
            if j != i:
                raise ValueError(f'CaltechMRMetric: image {r["img_id"]} was evaluated twice '
                                 f'(images {j} and {i} of {len(results)}): the image list repeats '
                                 f'it, and it would be scored twice')
        dropped = sum(r.get('dropped', 0) for r in results)
        if dropped:
            print_log(f'CaltechMRMetric: dropped {dropped} detections of zero or negative width '
                      f'or height (in {sum(bool(r.get("dropped")) for r in results)} images)',
                      logger=logger, level=logging.WARNING)
        res = evaluate_caltech([r['gt'] for r in results], [r['dt'] for r in results],
                               self.settings, resize_dets=self.resize_dets,
                               log_floor=self.log_floor, border=self.border,
                               img_ids=[r['img_id'] for r in results])
        metrics = {}
        lines = [f'Caltech log-average miss rate, {len(results)} images '
                 f'(resize_dets={self.resize_dets}, log_floor={self.log_floor})',
                 f'{"setting":<14}{"MR-2 %":>9}{"MR-4 %":>9}{"AP %":>9}{"#gt":>7}{"#dt":>8}']
        for name, r in res.items():
            metrics[f'{name}_MR-2'] = 100 * r['MR-2']
            metrics[f'{name}_MR-4'] = 100 * r['MR-4']
            metrics[f'{name}_AP{round(100 * r["iou_thr"])}'] = 100 * r['AP']
            lines.append(f'{name:<14}{100 * r["MR-2"]:>9.2f}{100 * r["MR-4"]:>9.2f}'
                         f'{100 * r["AP"]:>9.2f}{r["num_gt"]:>7}{r["num_dets"]:>8}')
        print_log('\n'.join(lines), logger=logger)

        out_dir = self._out_dir()
        if out_dir is not None and (self.plot or self.save_result_files):
            os.makedirs(out_dir, exist_ok=True)
            targets = []
            if self.plot:
                targets += [osp.join(out_dir, f'caltech_{name.replace("=", "-")}_mr_fppi.png')
                            for name in res]
            res_dir = osp.join(out_dir, 'res', self.algorithm)
            if self.save_result_files:
                targets += list(self.result_file_rows(results, res_dir))
            earlier = [p for p in targets
                       if osp.lexists(p) and osp.abspath(p) not in self._written]
            if self.plot:
                for name, r in res.items():
                    safe = name.replace('=', '-')
                    f = plot_mr_fppi([(self.algorithm, r['fppi'], r['miss_rate'], r['MR-2'])],
                                     osp.join(out_dir, f'caltech_{safe}_mr_fppi.png'), name,
                                     overwrite=True)
                    self._written.add(osp.abspath(f))
                    print_log(f'MR-FPPI curve saved to {f}', logger=logger)
            if self.save_result_files:
                self._written.update(self.write_result_files(results, res_dir))
                print_log(f'result files saved to {res_dir}', logger=logger)
            if earlier:
                print_log(f'CaltechMRMetric: replaced {len(earlier)} existing files that this '
                          f'run did not write (an earlier evaluation\'s?) in {out_dir}, e.g. '
                          f'{earlier[0]}', logger=logger, level=logging.WARNING)
        return metrics

    @staticmethod
    def result_file_rows(results: List[dict], res_dir: str) -> Dict[str, np.ndarray]:
        """``{res_dir/setXX/VYYY.txt: (n, 6) rows}`` of the results, by video.

        Raises:
            ValueError: an image id that is not ``setXX_VYYY_I%05d``.
        """
        videos = defaultdict(list)
        for r in results:
            s, v, f = parse_img_id(r['img_id'])
            dt = r['dt']
            videos[(s, v)].append(np.c_[np.full(len(dt), f + 1.), dt])
        return {osp.join(res_dir, f'set{s:02d}', f'V{v:03d}.txt'): np.concatenate(rows)
                for (s, v), rows in sorted(videos.items())}

    @staticmethod
    def write_result_files(results: List[dict], res_dir: str) -> List[str]:
        """Write ``res_dir/setXX/VYYY.txt`` (``frame,x,y,w,h,score``, frame 1-based), each
        atomically, replacing an existing file.

        Returns:
            the absolute paths written.

        Raises:
            ValueError: an image id that is not ``setXX_VYYY_I%05d``.
        """
        written = []
        for path, rows in CaltechMRMetric.result_file_rows(results, res_dir).items():
            write_result_file(path, rows, overwrite=True)
            written.append(osp.abspath(path))
        return written
