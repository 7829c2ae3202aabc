import os.path as osp
import sys

# checkpoint_payloads.py lives beside the tests that use it.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
