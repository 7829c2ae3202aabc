"""The teacher-feature cache: the frozen teacher's mimicked map per image and augmentation state,
computed once by the fill job (``tools/cache_teacher_features.py``), stored in LMDB as safetensors
entries and served to :class:`~mmmimic.models.distillers.FeatureMimicDistiller` instead of the
teacher's forward pass (docs/advanced_guides/distiller.md, "Teacher-feature cache").

Modules: :mod:`.identity` (what a store and an entry are bound to), :mod:`.pipeline` (which
training pipelines can be cached), :mod:`.codec` (an entry's bytes), :mod:`.store` (the LMDB
store), :mod:`.geometry` (the teacher's map shape per input shape), :mod:`.fill` (the fill job
and ``verify``'s live recomputation).
"""
from .codec import decode_entry, encode_entry
from .fill import (fill_cache_from_config, fill_teacher_cache, make_sample_computer,
                   teacher_map_of)
from .geometry import TeacherMapGeometry
from .identity import CACHE_FORMAT, CacheError, cache_identity, cache_key, sample_cache_key
from .pipeline import plan_cache_pipeline, recipe_pipeline
from .store import TeacherFeatureCache, cache_marked_complete, compare_maps

__all__ = [
    'CACHE_FORMAT', 'CacheError', 'TeacherFeatureCache', 'TeacherMapGeometry', 'cache_identity',
    'cache_key', 'cache_marked_complete', 'compare_maps', 'decode_entry', 'encode_entry',
    'fill_cache_from_config', 'fill_teacher_cache', 'make_sample_computer',
    'plan_cache_pipeline', 'recipe_pipeline', 'sample_cache_key', 'teacher_map_of'
]
