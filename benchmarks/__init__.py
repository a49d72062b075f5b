"""Speed and memory of BAM and of the training system, printed as tables and written as JSON.

Run with ``make bench`` (``python -m benchmarks --help`` for options). Not part of the test
suite: numbers depend on the machine; docs/performance.md quotes what they printed and where.
"""
