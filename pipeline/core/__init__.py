"""The small core every stage shares: atomic IO and image checks, params, run info, MMEngine compatibility,
distributed launch, hooks, and `runs` (the one training-run engine of the toy and matting stages)."""
