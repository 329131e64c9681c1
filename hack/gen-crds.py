#!/usr/bin/env python3
"""Writes crds/ from the pydantic models. Run after changing a models.py:

python hack/gen-crds.py          # regenerate
python hack/gen-crds.py --check  # exit 1 when crds/ is stale (what CI checks)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from controllers.crds import generate_all  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "crds", help="output directory")
    arguments = parser.parse_args()

    generated = generate_all()
    stale = [
        name
        for name, text in generated.items()
        if not (arguments.out / name).is_file()
        or (arguments.out / name).read_text(encoding="utf-8") != text
    ]
    if arguments.check:
        for name in stale:
            print(f"stale: crds/{name} (run python hack/gen-crds.py)", file=sys.stderr)
        return 1 if stale else 0
    arguments.out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(generated.items()):
        (arguments.out / name).write_text(text, encoding="utf-8")
        print(f"{'wrote' if name in stale else 'unchanged'} crds/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
