"""Integer arithmetic of layers and networks: geometry, layers, the grammar, evaluation.

No numpy here: `convcalc shape` and `params` run on this package alone.
"""
