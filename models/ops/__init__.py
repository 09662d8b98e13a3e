"""Up/downsampling operators and their pairs (importing registers them)."""
from models.ops.pairs import PAIR_NAMES, OperatorPair, build_pair

__all__ = ["PAIR_NAMES", "OperatorPair", "build_pair"]
