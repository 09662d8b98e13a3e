"""Full-resolution inference (whole or tiled), evaluation sets on disk, and the evaluation runner."""
from pipeline.evaluation.datasets import EvalSet, resolve_sets
from pipeline.evaluation.inference import predict_alpha
from pipeline.evaluation.runner import EvaluationError, evaluate_set, run_evaluation

__all__ = ["EvalSet", "EvaluationError", "evaluate_set", "predict_alpha", "resolve_sets", "run_evaluation"]
