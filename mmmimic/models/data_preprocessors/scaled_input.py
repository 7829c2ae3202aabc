"""A data preprocessor that feeds a detector its batch at a fixed fraction of the data's size.

Cross-scale mimic (paper Sec. 3.5) trains a student on the half-size image while the teacher sees
the full-size one; the distiller resizes the batch for the student with
:func:`~mmmimic.models.distillers.cross_scale.resize_batch`. The scratch controls of that
experiment, and a cross-scale student after :func:`~mmmimic.apis.student_export.extract_student`,
must see exactly the same half-size input from the same full-size data pipeline: this
preprocessor applies the same ``resize_batch`` after normalisation and padding, so

* a scratch student and its mimic twin draw identical crops and flips (same pipeline, same seed)
  and get bit-identical input tensors;
* ``scale_factor`` maps the original image to the network's input, so mmdet's
  ``predict(rescale=True)`` returns boxes in original-image coordinates and a test config reads the
  full-size frames; in training the gt boxes are scaled with the images, outside training they
  keep the pipeline's coordinates (as the predictions come back in), so metrics reading the data
  samples' gt (proposal recall, VOC mAP) score the original boxes.
"""
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS

from ..distillers.cross_scale import resize_batch


@MODELS.register_module()
class ScaledInputDataPreprocessor(DetDataPreprocessor):
    """:class:`DetDataPreprocessor` followed by a resize of the whole batch by ``input_scale``.

    Args:
        input_scale: resize factor in (0, 1]; the padded batch times ``input_scale`` must be an
            integer size (``pad_size_divisor`` a multiple of ``1 / input_scale`` x the network's
            stride).
        **kwargs: :class:`DetDataPreprocessor` arguments.

    Raises:
        ValueError: ``input_scale`` outside (0, 1], or a ``pad_size_divisor`` that cannot give an
            exact integer size at ``input_scale``.
    """

    def __init__(self, input_scale: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 < float(input_scale) <= 1:
            raise ValueError(f'ScaledInputDataPreprocessor: input_scale must be in (0, 1], got '
                             f'{input_scale!r}')
        divisor = self.pad_size_divisor * float(input_scale)
        if input_scale != 1 and not divisor.is_integer():
            raise ValueError(f'ScaledInputDataPreprocessor: pad_size_divisor '
                             f'{self.pad_size_divisor} x input_scale {input_scale} = {divisor} '
                             'is not an integer, so padded batches would not resize exactly; '
                             f'use a pad_size_divisor that is a multiple of {1 / input_scale:g}')
        self.input_scale = float(input_scale)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if self.input_scale == 1.0:
            return data
        # Outside training the gt boxes stay where the pipeline put them (original-image
        # coordinates in mmdet's test pipelines), like the rescaled predictions, so metrics that
        # read the data samples' gt (proposal recall, VOC mAP) compare like with like.
        inputs, samples = resize_batch(data['inputs'], data['data_samples'] or [],
                                       self.input_scale, scale_boxes=training)
        return dict(inputs=inputs, data_samples=samples if data['data_samples'] else
                    data['data_samples'])
