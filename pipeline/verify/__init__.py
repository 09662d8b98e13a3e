"""The verify stage: evidence, written to results/verify/, for what this repository checks about itself."""
