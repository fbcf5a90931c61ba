"""metalbench: like-for-like ML framework benchmarks on Apple Silicon, CUDA and CPU."""

__version__ = "0.1.0"
