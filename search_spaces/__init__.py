"""Search space: ArchConfig, the MobileNetV2-like space scaled by (W, R), and the model zoo."""
from search_spaces.arch import ArchConfig, ArchError, BlockConfig, BlockSpec, StageConfig, make_divisible
from search_spaces.space import Genes, SearchSpace

__all__ = ["ArchConfig", "ArchError", "BlockConfig", "BlockSpec", "StageConfig", "make_divisible",
           "Genes", "SearchSpace"]
