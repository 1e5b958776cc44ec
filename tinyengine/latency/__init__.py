"""Latency: per-kernel analytic models fitted on probe records (the terms come from the kernel registry)."""
from tinyengine.latency.model import (
                                      CPI_ESTIMATE,
                                      FORMAT,
                                      KernelFit,
                                      LatencyError,
                                      LatencyModel,
                                      Sample,
                                      arch_layers,
                                      default_model,
                                      evaluate,
                                      fit,
                                      layer_features,
                                      read_records,
)

__all__ = ["CPI_ESTIMATE", "FORMAT", "KernelFit", "LatencyError", "LatencyModel", "Sample", "arch_layers",
           "default_model", "evaluate", "fit", "layer_features", "read_records"]
