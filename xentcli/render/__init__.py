"""What the user sees: the compute table and its machine formats (compute.py),
explain's walk-through (explain.py), the compare report, the progress bar,
and output.py, which owns every write (stdout, files written atomically,
pictures)."""
