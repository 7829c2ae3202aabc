"""Moved: the vtest study now lives in ``projects/vtest_mimic/``.

Run it as ``python -m projects.vtest_mimic.tools.run`` (same options; the presets are
``projects/vtest_mimic/configs/presets/``). Output folders of this script keep working.
"""
import sys

if __name__ == '__main__':
    print('tools/mimic_demo.py moved to `python -m projects.vtest_mimic.tools.run` '
          '(projects/vtest_mimic/README.md)', file=sys.stderr)
    sys.exit(2)
