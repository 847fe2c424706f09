"""Benchmarks: each module has ``main(argv) -> int`` and runs as a script too.
Each prints ratios measured in one run on one machine (never compared across runs)."""
