"""Robustness: bad inputs, damaged checkpoints, data-aware reuse, interrupted stages (issue 14)."""
