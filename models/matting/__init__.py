"""The A2U matting network and its MMEngine wrapper (importing registers `A2UMattingNet`, `A2UMattor` and
`A2UMattingLoss` in MMEngine's root `MODELS`)."""
from models.matting import losses, mattor  # noqa: F401  (registers A2UMattingLoss, A2UMattor)
from models.matting.network import A2UMattingNet, build_matting_pair

__all__ = ["A2UMattingNet", "build_matting_pair"]
