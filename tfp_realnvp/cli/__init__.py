"""Command-line jobs of tfp_realnvp: each module has `main(argv=None) -> int`."""
