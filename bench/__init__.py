"""rawdqn micro-benchmarks: every kernel, every mode, one table. Run `python -m bench --help`."""
