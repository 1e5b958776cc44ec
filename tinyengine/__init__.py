"""TinyEngine: int8 graph IR, quantisation, reference executor, memory planner and latency model."""
