# Profile `extended` (the cpu budgets with the whole toy study): the matting recipe is the cpu profile's.
_base_ = ['./a2u-matting_r34-mini_1xb4-500i_synthetic-128px_cpu.py']
