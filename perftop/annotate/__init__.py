"""Annotate: a function's code (disassembly, source lines) read again from disk, off the hot
path, for the per-offset histograms the sampler keeps (perftop.model.annotate)."""
