# The quick preset of the vtest study (`python -m projects.vtest_mimic.tools.run --quick`): the
# default preset's schedule on 3 seeds and the cross-scale (headline) block only. Measured wall
# time: projects/vtest_mimic/results/quick/report.md. Any key can be overridden with
# `--cfg-options KEY=VALUE`.
_base_ = './default.py'
seeds = (0, 1, 2)
stage2_iters = 0
mimic_weights = dict(_delete_=True)
blocks = ('teacher', 'cross-scale')
