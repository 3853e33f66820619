"""convcalc: a convolution calculator and visualizer."""

__version__ = "0.1.0"
