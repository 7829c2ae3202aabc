"""The teacher-feature cache: the frozen teacher's mimicked map(s) per image and augmentation state,
computed once by the fill job (``tools/cache_teacher_features.py``), stored in LMDB as safetensors
entries and served to :class:`~mmmimic.models.distillers.FeatureMimicDistiller` instead of the
teacher's forward pass (docs/advanced_guides/distiller.md, "Teacher-feature cache").

Modules: :mod:`.identity` (what a store and an entry are bound to), :mod:`.levels` (the teacher
levels a store holds: one map, or the mimicked levels of a pyramid), :mod:`.pipeline` (which
training pipelines can be cached), :mod:`.codec` (an entry's bytes), :mod:`.store` (the LMDB
store), :mod:`.serving` (a batch's maps from the store, ``verify``'s comparison),
:mod:`.geometry` (the teacher's map shapes per input shape), :mod:`.fill` (the fill job and
``verify``'s live recomputation).
"""
from .codec import decode_entry, decode_levels, encode_entry
from .fill import (fill_cache_from_config, fill_teacher_cache, make_sample_computer,
                   teacher_map_of, teacher_maps_of)
from .geometry import TeacherMapGeometry
from .identity import CACHE_FORMAT, CacheError, cache_identity, cache_key, sample_cache_key
from .levels import cached_levels, entry_tensors
from .pipeline import plan_cache_pipeline, recipe_pipeline
from .serving import compare_maps
from .store import TeacherFeatureCache, cache_marked_complete

__all__ = [
    'CACHE_FORMAT', 'CacheError', 'TeacherFeatureCache', 'TeacherMapGeometry', 'cache_identity',
    'cache_key', 'cache_marked_complete', 'cached_levels', 'compare_maps', 'decode_entry',
    'decode_levels', 'encode_entry', 'entry_tensors', 'fill_cache_from_config',
    'fill_teacher_cache', 'make_sample_computer', 'plan_cache_pipeline', 'recipe_pipeline',
    'sample_cache_key', 'teacher_map_of', 'teacher_maps_of'
]
