"""Lowering of a planned int8 graph to C source (kernels, layouts, static arena offsets)."""
