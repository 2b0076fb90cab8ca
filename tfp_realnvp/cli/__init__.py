"""The command-line programs, each `main(argv=None) -> exit code`.

- `tfp_realnvp.cli.train`: the training job (`tfp-realnvp-train`,
  `python examples/train_mnist.py`);
- `tfp_realnvp.cli.evaluate`: scores and samples a trained run (`tfp-realnvp-evaluate`,
  `python examples/evaluate.py`);
- `tfp_realnvp.cli.common`: their shared flags, errors and exit codes.
"""
