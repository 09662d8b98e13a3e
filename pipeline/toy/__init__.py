"""The `toy` stage's library: IDX data, the reconstruction dataset and metrics, the runs over operators ×
seeds, and the stage's tables and grid."""
