"""The `train` and `evaluate` stages' library: matting datasets and transforms, training (MMEngine runner glue,
validation metric, checkpoints), full-resolution evaluation and the MATLAB-exact matting metrics."""
