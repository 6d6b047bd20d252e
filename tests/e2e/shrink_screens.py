"""Copy the e2e screenshots (test-artifacts/screens/, written by test_dashboard_committee.py) into
docs/img/dashboard/ at half size with a 128-colour palette, small enough to keep in the repository.
Run by `make screenshots`."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "test-artifacts" / "screens"
TARGET = ROOT / "docs" / "img" / "dashboard"


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    written = 0
    for size in ("1280x800", "1920x1080"):
        for png in sorted((SOURCE / size).glob("*.png")):
            image = Image.open(png).convert("RGB")
            image = image.resize((image.width // 2, image.height // 2), Image.LANCZOS)
            image.quantize(colors=128).save(TARGET / f"{png.stem}-{size}.png", optimize=True)
            written += 1
    print(f"{written} screenshots in {TARGET.relative_to(ROOT)}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
