"""Layer 5, evaluation: the evaluators and the benchmark, kept out of the library path as faster-whisper
keeps its benchmarks: each is a `python -m app.evaluation.NAME` command. Imports every layer below,
never the shell."""
