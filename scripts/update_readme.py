"""Regenerate the README's generated sections (anomaly table, reference state diagram).

    python scripts/update_readme.py          # rewrite README.md in place
    python scripts/update_readme.py --check  # exit 1 if README.md is out of date

Each section sits between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tcptrace_sm.anomalies import catalogue_markdown
from tcptrace_sm.diagram import reference_mermaid

README = Path(__file__).resolve().parent.parent / "README.md"


def sections() -> dict[str, str]:
    return {
        "anomaly-table": catalogue_markdown(),
        "reference-diagram": "```mermaid\n" + reference_mermaid() + "```\n",
    }


def render(text: str) -> str:
    for name, body in sections().items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no {name} markers")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main() -> int:
    old = README.read_text(encoding="utf-8")
    new = render(old)
    if "--check" in sys.argv[1:]:
        if new != old:
            print("README.md is out of date: run python scripts/update_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
