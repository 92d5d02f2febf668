"""What tests in every folder share: the CLI in a subprocess, seeded BatchNorm, the variant table's code paths,
and whole labelled sets as one tensor (``helpers.data.stacked``: the product streams; some tests need every image
at once).

Imported as ``helpers`` (``tests/`` is on ``sys.path`` because ``tests/conftest.py`` lives there): one copy of
each helper, so a test that hides a dependency or runs the command does it the way every other test does.
"""
