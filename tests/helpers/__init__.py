"""What tests in every folder share: the CLI in a subprocess, seeded BatchNorm, and the variant table's code paths.

Imported as ``helpers`` (``tests/`` is on ``sys.path`` because ``tests/conftest.py`` lives there): one copy of
each helper, so a test that hides a dependency or runs the command does it the way every other test does.
"""
