# The default preset of the vtest study (`python -m projects.vtest_mimic.tools.run`): 5 seeds,
# every block, stage 2. Any key can be overridden with `--cfg-options KEY=VALUE`.
#
# Iterations of batch 2 (320x384 crops of the full frames; half-input students see them at
# 160x192). `iters`: stage-1 students; `stage2_iters`: stage 2 on top (every stage-2 model has
# iters + stage2_iters in total); `teacher_iters`: the RPN teacher, validated every
# `teacher_val_interval` iterations, the best checkpoint kept.
seeds = (0, 1, 2, 3, 4)
iters = 600
# The RPN teacher, a TEACHER_CANDIDATES entry (vtest_mimic/models.py). The published tables use
# 'full'; the teacher sweep on validation prefers 'jitter'
# (projects/vtest_mimic/results/teacher_sweep/teacher_sweep.md): `--teacher jitter` runs it.
teacher = 'full'
teacher_iters = 1500
teacher_val_interval = 250
stage2_iters = 400
# lambda1 of every mimic student, chosen on the validation split by tools/weight_sweep.py
# (projects/vtest_mimic/results/weight_sweep/sweep.md: the cross-scale 1/2 student).
mimic_weight = 10.0
# per-model exceptions, each chosen on validation by the same sweep for its own block
# (`--block same-input`; results/weight_sweep/sweep_same-input_1-2.md, ..._1-4.md)
# The mmdet block's students: tools/mmdet_sweep.py (projects/vtest_mimic/results/mmdet_sweep/)
mimic_weights = {'mimic-1-2': 0.1, 'mimic-1-4': 0.1, 'mm-mimic-frcnn': 1.0,
                 'mm-mimic-retina': 1.0}
# the mmdet block (pyramid mimic on mmdet's Faster R-CNN FPN and RetinaNet, half input): its
# teacher's and students' iterations; its level rule and weights were chosen on validation by
# tools/mmdet_sweep.py (projects/vtest_mimic/results/mmdet_sweep/)
mmdet_teacher_iters = 1500
mmdet_iters = 1000
blocks = ('teacher', 'cross-scale', 'same-input', 'stage2', 'mmdet')
