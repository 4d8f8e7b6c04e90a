"""Batch example: run the yearly audit of every city in a config and compare with last year.

    python scripts/annual_audit.py scripts/audit.example.yaml --previous-root audits/2025

For each city it looks for last year's folder ``{name}-{year-1}`` under ``--previous-root`` and,
when found, adds the year-over-year comparison. Cities run in parallel on a local Dask cluster
(or ``--scheduler tcp://host:8786``); one failing city is reported and loses nothing of the others.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from circles.runs.audit import load_config, run_audit


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--previous-root", help="folder holding last year's audit folders")
    ap.add_argument("--out-root", help="where this year's audit folders go")
    ap.add_argument("--scheduler")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    cities = load_config(args.config)
    if args.previous_root:
        for city in cities:
            prev = sorted(Path(args.previous_root).glob(f"{city['name']}-{int(city['year']) - 1}*"))
            if prev:
                city["compare"] = str(prev[-1])
                print(f"{city['name']}: comparing with {prev[-1]}")
    # Write the resolved cities (absolute paths, compare folders) as the config actually run.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as fh:
        yaml.safe_dump({"cities": [{k: v for k, v in c.items() if not k.startswith("_")}
                                   for c in cities]}, fh, allow_unicode=True)
        resolved = fh.name
    out_root = args.out_root or str(Path(args.config).resolve().parent)
    summary = run_audit(resolved, scheduler=args.scheduler, workers=args.workers, out_root=out_root)
    print(summary.text())
    return 1 if len(summary.failed) else 0


if __name__ == "__main__":
    sys.exit(main())
