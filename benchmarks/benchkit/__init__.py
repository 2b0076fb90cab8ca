"""Shared pieces of the benchmark scripts, one job per module.

* `environment`: paths, TensorFlow's import-time settings, machine facts.
  Import it before TensorFlow (every other module here does).
* `configs`: the named model configurations and their command-line flags.
* `models`: builders of the flows under test (ours, TFP's Glow and RealNVP).
* `steps`: a model's training step, `log_prob` and `sample` as `tf.function`s.
* `timing`: interleaved timing against a reference convolution, ceilings.
* `flops`: FLOP counts (TensorFlow's profiler, analytic convolution counts).
* `results`: JSON files in `benchmarks/results/`.
"""
