"""Sphinx configuration of devkit's documentation: MyST Markdown pages in the shape tutorial /
how-to / reference / explanation, the reference pages generated from the code (_ext/), furo.

Build it with `sphinx-build -W --keep-going -n -b html docs docs/_build/html` (tests/test_docs.py
does, with warnings as errors). Nothing is fetched: no intersphinx, no remote images."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE / "_ext")]

from devkit import __version__  # noqa: E402

project = "devkit"
author = "the devkit authors"
copyright = "the devkit authors"
version = release = __version__

extensions = ["myst_parser", "devkit_reference"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
nitpicky = True
smartquotes = False  # `--set`, not an en dash; straight quotes as typed

html_theme = "furo"
html_title = f"devkit {release}"
pygments_style = "friendly"
