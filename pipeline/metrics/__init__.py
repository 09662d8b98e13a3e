"""Metrics: matting errors with the MATLAB reference's semantics (`matting`), and others beside them."""
from pipeline.metrics.matting import (METRIC_NAMES, compute_matting_metrics, connectivity_error,
                                      gradient_error, mse, sad)

__all__ = ["METRIC_NAMES", "compute_matting_metrics", "connectivity_error", "gradient_error", "mse", "sad"]
