"""The vtest study: does feature mimic help where the teacher knows more?

Modules by job: :mod:`.models` (the model list and run configs), :mod:`.options` (presets and
the command line), :mod:`.job` (the stage planner, ETA and stage runners), :mod:`.data` (the
release of ``vtest.avi`` and its conversion), :mod:`.speed`, :mod:`.report` (tables, intervals,
plots), :mod:`.stats` (t-intervals, the share of the gap closed), :mod:`.study` (one run end to
end), :mod:`.sweeps` (the validation sweeps) and :mod:`.dataset` (the classical labeller and
the Caltech-format release writer). The command lines are ``projects/vtest_mimic/tools/``.
Nothing in ``mmmimic`` imports this package.
"""
