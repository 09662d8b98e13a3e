"""The A2U matting network (importing registers `A2UMattingNet` in MMEngine's root `MODELS`)."""
from models.matting.network import A2UMattingNet, build_matting_pair

__all__ = ["A2UMattingNet", "build_matting_pair"]
