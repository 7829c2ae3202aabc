"""Proposal recall of RPN-only models as an mmengine metric."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from ..functional.proposal_recall import proposal_recall


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)


@METRICS.register_module()
class ProposalRecallMetric(BaseMetric):
    """Recall of the top-N proposals at IoU 0.5 and 0.7 (the paper's Table 11), any dataset.

    Ground truth: the data sample's ``gt_instances.bboxes`` (xyxy). mmdet's test pipelines load
    annotations after ``Resize``, so they are in original image coordinates, like the proposals
    (``pred_instances`` of an RPN-only detector, rescaled). Ignored instances (VOC ``difficult``,
    Caltech ignore regions) are not counted.

    Args:
        proposal_nums: the N values (default 300).
        iou_thrs: IoU thresholds (default 0.5 and 0.7).
        min_gt_height: only count gts at least this tall (e.g. 50 for Caltech's Reasonable
            scale); 0 counts all.
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric`.

    Reported keys: ``proposal/recall@<N>_iou<thr*100>`` in %, e.g. ``recall@300_iou50``.
    """

    default_prefix: Optional[str] = 'proposal'

    def __init__(self,
                 proposal_nums: Sequence[int] = (300, ),
                 iou_thrs: Sequence[float] = (0.5, 0.7),
                 min_gt_height: float = 0,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.proposal_nums = [int(n) for n in proposal_nums]
        self.iou_thrs = [float(t) for t in iou_thrs]
        self.min_gt_height = min_gt_height

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep the gt boxes and the top proposals (with scores) of every image."""
        for ds in data_samples:
            if 'gt_instances' not in ds:
                raise KeyError(f'ProposalRecallMetric: the data sample of {ds.get("img_path")} '
                               f'has no gt_instances (LoadAnnotations missing from the pipeline?)')
            gt = _np(ds['gt_instances']['bboxes']).reshape(-1, 4).astype(np.float32)
            gt = gt[(gt[:, 3] - gt[:, 1]) >= self.min_gt_height]
            pred = ds['pred_instances']
            p = np.c_[_np(pred['bboxes']).reshape(-1, 4), _np(pred['scores']).reshape(-1)]
            p = p[np.argsort(-p[:, 4], kind='stable')[:max(self.proposal_nums)]]
            self.results.append((gt, p.astype(np.float32)))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        """Recall in % for every (N, IoU threshold)."""
        rec = proposal_recall([r[0] for r in results], [r[1] for r in results],
                              self.proposal_nums, self.iou_thrs)
        metrics = {}
        lines = [f'proposal recall over {sum(len(r[0]) for r in results)} gts, '
                 f'{len(results)} images']
        for k, n in enumerate(self.proposal_nums):
            for j, t in enumerate(self.iou_thrs):
                metrics[f'recall@{n}_iou{int(round(t * 100))}'] = 100 * float(rec[k, j])
                lines.append(f'  top {n:>5} proposals, IoU >= {t:.2f}: {100 * rec[k, j]:6.2f}%')
        print_log('\n'.join(lines), logger=MMLogger.get_current_instance())
        return metrics
