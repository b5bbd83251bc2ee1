"""Operating fyp: Prometheus metrics and structured logs.

Other parts report through the small hooks in :mod:`fyp.ops.metrics` (``observe_stage``,
``observe_fallback``, ``set_model_version``, ``set_online_state_size``, ...); they never touch
prometheus-client themselves, so metric names and labels stay in one file.
"""
