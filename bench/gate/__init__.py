"""The regression gate: compare a candidate run with a baseline (compare.py), render the
verdicts (output.py), turn stored runs into baselines (baseline.py), export to
pytest-benchmark (export.py), and their commands (commands.py)."""
