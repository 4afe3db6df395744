"""The docs cannot drift from the code: the generated reference pages are current, every relative link of
the README resolves, and the site builds with mkdocs --strict (a broken link or a bad API page fails it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dece.cli.reference import PAGES

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_generated_reference_pages_are_current(page):
    filename, make = PAGES[page]
    assert (ROOT / "docs" / filename).read_text(encoding="utf-8") == make().rstrip("\n") + "\n", \
        "run: dece reference --write docs"


def test_every_relative_link_of_the_readme_resolves():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [t for t in re.findall(r"\]\(([^)#\s]+)", text) if "://" not in t]
    assert links, "the README links to the docs"
    missing = [t for t in links if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_the_cli_reference_lists_every_sub_command():
    from dece.cli import COMMANDS

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"\n## dece {name.replace('_', '-')}\n" in text


def test_the_site_builds_with_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (make install adds it)")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "results/paper-lyra/" in home  # the README's docs/ links, made relative to the site
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "DeCELoss" in api and "alpha_base" in api  # the API page is rendered from the docstrings
