"""The results schema as Markdown, generated from `bench.results` (SCHEMA and its column
docs), so the documentation cannot drift from the file format: the docs' schema page
inserts this table at build time (docs/hooks.py), and `python -m bench.schema_doc` prints it.
"""

from __future__ import annotations

import sys

import pyarrow as pa

from bench.results import SCHEMA, SCHEMA_VERSION, TIMING_PREFIX_DOCS, column_doc, timing_column

KIND_NAMES = {"": "headline", "latency_": "latency", "queued_": "queued", "device_": "device"}


def type_name(kind: pa.DataType) -> str:
    """Arrow types in the words a pandas or pyarrow user meets: `list<double>`, not `list<item: double>`."""
    if pa.types.is_list(kind):
        return f"list<{type_name(kind.value_type)}>"
    if pa.types.is_timestamp(kind):
        return f"timestamp ({kind.tz or 'naive'})"
    return str(kind)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """The schema page's generated part: the timing kinds, then one table row per column, in file order."""
    lines = [
        f"Schema version {SCHEMA_VERSION}, {len(SCHEMA)} columns. Ten timing fields come in four kinds, "
        "each a prefix of the same ten names:",
        "",
        *(f"- `{prefix}median_s`, `{prefix}mean_s`, …: {_cell(doc)}" for prefix, doc in TIMING_PREFIX_DOCS.items()),
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    for field in SCHEMA:
        timing = timing_column(field.name)
        meaning = column_doc(field.name) if timing is None else f"{column_doc(field.name).split('; ')[0]} ({KIND_NAMES[timing[0]]})"
        lines.append(f"| `{field.name}` | {type_name(field.type)} | {_cell(meaning)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
