"""Wall time and peak memory of every job of a workflow run, from Snakemake's benchmark files.

Usage: python benchmarks/rebuild_times.py [results/quick]
Each rule of the Snakefile writes `<results>/benchmarks/<job>.tsv` (seconds, max RSS in MB);
prints one row per job, sorted by stage, then the sum of job times per stage.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "results/quick")
    paths = sorted((results / "benchmarks").glob("*.tsv"))
    if not paths:
        raise SystemExit(f"no benchmark files in {results / 'benchmarks'}; run the workflow first")
    rows = []
    for path in paths:
        row = pd.read_csv(path, sep="\t").iloc[-1]
        rows.append({"job": path.stem, "stage": path.stem.split("_")[0], "minutes": row["s"] / 60,
                     "peak MB": row["max_rss"]})
    table = pd.DataFrame(rows).sort_values(["stage", "job"])
    print(table.to_markdown(index=False, floatfmt=".1f"))
    print()
    print(table.groupby("stage")[["minutes"]].sum().to_markdown(floatfmt=".1f"))
    total, peak = table["minutes"].sum(), table["peak MB"].max()
    print(f"\nsum of job times: {total:.1f} min; largest peak: {peak:.0f} MB")


if __name__ == "__main__":
    main()
