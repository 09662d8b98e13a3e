# Profile `extended` (the cpu budgets with the whole toy study): the matting recipe is the cpu profile's.
_base_ = ['./a2u-matting_r34_1xb4-900i_synthetic-64px_cpu.py']
