"""TinyEngine, the engine: int8 graph IR and its safe format (``ir``), importers and post-training
quantisation (``frontend``), TFLite-exact numerics and the NumPy reference (``numerics``), the kernel
registry (``kernels``), graph rewrites (``passes``), the memory planner (``planner``) and the pipeline
that runs them (``pipeline``), the cost model the search uses (``cost``), the latency model
(``latency``), export to other runtimes (``export``) and firmware build, emulation and the serial probe
(``deploy``). It never imports ``codegen``, ``tinynas`` or the command lines (tests/test_layers.py)."""
