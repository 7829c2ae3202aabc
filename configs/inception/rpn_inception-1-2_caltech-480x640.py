# 1/2-Inception RPN fed the half-size 480x640 Caltech images (the "input 480x640" rows of Table 10,
# without cross-scale mimic): 4x less compute than at short side 1000.
_base_ = [
    './rpn_inception-1-2_caltech.py',
    '../_base_/datasets/caltech_480x640.py',
]
