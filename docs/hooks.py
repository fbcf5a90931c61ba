"""MkDocs hook: the schema page's column table comes from bench/results.py at build time
(bench.schema_doc), so the page and the file format cannot drift apart."""

from __future__ import annotations

import sys
from pathlib import Path

MARKER = "<!-- generated: bench.schema_doc -->"


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    if MARKER not in markdown:
        return markdown
    root = str(Path(config["config_file_path"]).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)  # the tree being documented, not an installed copy
    from bench.schema_doc import markdown as schema_markdown

    return markdown.replace(MARKER, schema_markdown())
