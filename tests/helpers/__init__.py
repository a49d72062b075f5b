"""What the tests share: one module per kind of helper, imported as ``helpers.NAME``; no test module imports another.

``tests/`` is on ``sys.path`` (pytest puts the rootdir conftest's folder there), so ``helpers`` is importable from every
test folder, and from the ``bam`` processes the tests start, which import callbacks from here by dotted name
(``helpers.resume.SigtermAt``).
"""
