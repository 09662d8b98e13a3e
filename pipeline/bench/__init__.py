"""Speed and memory benchmarks of the operator pairs and the matting network (the `bench` stage's library).

Modules: `timing` (interleaved medians, CPU clock or CUDA events), `memory` (peak-memory measurement),
`ops` (operator pairs and the reassembly kernels), `networks` (whole matting network), `tables` (markdown),
`plot` (ratios.png).
"""
