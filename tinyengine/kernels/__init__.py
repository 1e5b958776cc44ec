"""The kernel contract: the registry of C kernels (``registry``) and the per-op choice (``choice``)."""
