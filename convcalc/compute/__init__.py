"""numpy: padding, the four convolution methods, operations, pipelines, traces."""
