"""Import helpers for the repository's tools/ scripts (not a package)."""
import os.path as osp
import runpy

_TOOLS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools')

extract_student = runpy.run_path(
    osp.join(_TOOLS, 'model_converters', 'extract_student.py'))['extract_student']
