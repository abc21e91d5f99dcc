"""Write (or check) the WBXML twin of every DM 1.2 example in assets/examples/dm12.

Each `NAME.wbxml` is the project's own WBXML encoding of `NAME.xml` (parsed, then built again, so
layout whitespace does not travel). Run it after editing an XML example; `--check` exits 1 when a
twin is missing, stale, or does not decode to the same message (the test suite runs it so).

    .venv/bin/python scripts/example_wbxml.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator.protocol.syncml import codes  # noqa: E402
from emulator.protocol.syncml.message import build_message, parse_message  # noqa: E402

EXAMPLES = ROOT / "assets" / "examples" / "dm12"


def twin(xml: bytes) -> bytes:
    """The WBXML bytes for one XML example; ValueError when they would not decode to the same message."""
    message = parse_message(xml, codes.MEDIA_DM_XML)
    data = build_message(message, wbxml=True)
    if parse_message(data, codes.MEDIA_DM_WBXML) != message:
        raise ValueError("the WBXML encoding does not decode to the same message")
    return data


def main(argv: list[str]) -> int:
    check = "--check" in argv
    problems = 0
    for xml_path in sorted(EXAMPLES.glob("*.xml")):
        wbxml_path = xml_path.with_suffix(".wbxml")
        data = twin(xml_path.read_bytes())
        rel = wbxml_path.relative_to(ROOT)
        if check:
            if not wbxml_path.is_file() or wbxml_path.read_bytes() != data:
                print(f"{rel}: missing or stale; run scripts/example_wbxml.py", file=sys.stderr)
                problems += 1
        elif not wbxml_path.is_file() or wbxml_path.read_bytes() != data:
            wbxml_path.write_bytes(data)
            print(f"wrote {rel} ({len(data)} bytes)")
    orphans = [p for p in EXAMPLES.glob("*.wbxml") if not p.with_suffix(".xml").is_file()]
    for p in orphans:
        print(f"{p.relative_to(ROOT)}: no XML example beside it", file=sys.stderr)
    return 1 if problems or orphans else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
