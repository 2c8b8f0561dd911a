"""Run a notebook for the Snakefile: papermill to a temporary file, renamed when it has finished.

    python -m latco.workflow notebooks/03_offline_planning.ipynb OUT.ipynb --threads 1 -p task obstacle ...

papermill writes its output notebook cell by cell; writing to ``.OUT.ipynb.tmp`` and renaming
at the end means a killed job leaves no output that looks finished, so Snakemake re-runs it (and
the notebook's resumable calls continue where the killed run stopped). ``--threads`` caps torch's
and OpenMP's threads at the rule's share of the cores.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml


def run_notebook(notebook: str | os.PathLike, output: str | os.PathLike, parameters: dict[str, object],
                 threads: int | None = None) -> Path:
    """Execute ``notebook`` with ``parameters`` into ``output`` atomically; returns ``output``."""
    import papermill

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    if threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    # the kernel runs in the caller's directory, so relative paths mean the same as in the Snakefile
    papermill.execute_notebook(str(notebook), str(tmp), parameters=parameters, kernel_name="python3",
                               progress_bar=False, cwd=os.getcwd())
    os.replace(tmp, output)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a parameter; VALUE is read as YAML (0 -> int, null -> None)")
    args = parser.parse_args(argv)
    parameters = {name: yaml.safe_load(value) for name, value in args.p}
    run_notebook(args.notebook, args.output, parameters, args.threads)


if __name__ == "__main__":
    main(sys.argv[1:])
