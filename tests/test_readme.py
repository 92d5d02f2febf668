"""The README documents the real project: its variant table and test command match the code and CI."""

from __future__ import annotations

import re
from pathlib import Path

import resnet_hub
from resnet_hub.cli.models import _summary, markdown_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_variant_table_is_the_generated_one():
    block = README.split("<!-- variants-table:start -->")[1].split("<!-- variants-table:end -->")[0].strip()
    expected = markdown_table([_summary(name, 224) for name in resnet_hub.variant_names()])
    assert block == expected, "run `resnet-hub list --markdown` and paste the table into README.md"


def test_ci_runs_the_readme_test_command():
    match = re.search(r"## Test\s+```bash\n(.+?)\n```", README)
    assert match, "README must show the test command under '## Test'"
    command = match.group(1).strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines
