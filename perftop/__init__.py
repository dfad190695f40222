"""perftop: a live CPU profiler for the terminal."""

__version__ = "0.1.0"
