"""Library of the A2U reproduction pipeline: data, metrics, runner glue, report.

`pipeline` may import `models`; it never imports `stages`.
"""
