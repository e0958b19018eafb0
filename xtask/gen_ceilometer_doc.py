#!/usr/bin/env python3
"""Writes a large Ceilometer sample list for measuring the streaming importer (BENCHMARKS.md).

The example month (examples/exports/ceilometer-2026-11.json, 477 samples) copied N times, each
copy with its own resources (`resource_id` + `-c<copy>`) and message ids, as `{"samples": [...]}`
one sample per line. Written as it goes: the document is never held.

Usage: python3 xtask/gen_ceilometer_doc.py N OUT.json
"""

import json
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples/exports/ceilometer-2026-11.json"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    copies, out_path = int(sys.argv[1]), sys.argv[2]
    samples = json.loads(EXAMPLE.read_text())
    with open(out_path, "w") as out:
        out.write('{"samples": [\n')
        first = True
        for c in range(copies):
            for s in samples:
                t = dict(s, resource_id=f"{s['resource_id']}-c{c}", message_id=f"{s['message_id']}-c{c}")
                out.write(("" if first else ",\n") + json.dumps(t))
                first = False
        out.write("\n]}\n")


if __name__ == "__main__":
    main()
