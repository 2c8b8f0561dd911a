"""Run a notebook for the Snakefile: papermill to a temporary file, renamed when it has finished.

    python -m latco.paper.workflow notebooks/03_offline_planning.ipynb OUT.ipynb --threads 1 \
        -p task obstacle ...

papermill writes its output notebook cell by cell; writing to ``.OUT.ipynb.tmp`` and renaming
at the end means a killed job leaves no output that looks finished, so Snakemake re-runs it (and
the notebook's resumable calls continue where the killed run stopped). ``--threads`` caps torch's
and OpenMP's threads at the rule's share of the cores. Progress bars arrive as one stream output
per refresh (thousands per training run); the saved notebook keeps what a terminal would show.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
import yaml


def _terminal_text(text: str) -> str:
    """What a terminal shows for ``text``: within each line, a carriage return restarts the line."""
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in lines)


def collapse_streams(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    r"""Merge each cell's consecutive stdout/stderr outputs and resolve carriage returns, in place.

    A tqdm bar without ipywidgets writes ``\rbar`` once per refresh, each a separate output;
    merged and resolved, a 3000-step training run leaves one line instead of 3000 outputs.
    """
    for cell in nb.cells:
        merged: list = []
        for out in cell.get("outputs", []):
            prev = merged[-1] if merged else None
            if (out.get("output_type") == "stream" and prev is not None
                    and prev.get("output_type") == "stream" and prev.get("name") == out.get("name")):
                prev["text"] += out["text"]
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = _terminal_text(out["text"])
        if "outputs" in cell:
            cell["outputs"] = merged
    return nb


def check_parameters(notebook: str | os.PathLike, parameters: dict[str, object]) -> None:
    """Raise ValueError if a parameter is not in the notebook's parameters cell (papermill would only
    warn "Passed unknown parameter" and run with the default), listing the valid ones."""
    import papermill

    valid = papermill.inspect_notebook(str(notebook))
    unknown = sorted(set(parameters) - set(valid))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for {notebook}; "
                         "its parameters: "
                         f"{', '.join(valid)}. Profile settings (planner budgets, training steps, ...) go "
                         "in `overrides`, e.g. -p overrides '{planners.latco.iterations: 100}'")


def run_notebook(notebook: str | os.PathLike, output: str | os.PathLike, parameters: dict[str, object],
                 threads: int | None = None) -> Path:
    """Execute ``notebook`` with ``parameters`` into ``output`` atomically; returns ``output``.
    A parameter the notebook does not declare is an error (``check_parameters``)."""
    import papermill

    check_parameters(notebook, parameters)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    if threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    # the kernel runs in the caller's directory, so relative paths mean the same as in the Snakefile
    papermill.execute_notebook(str(notebook), str(tmp), parameters=parameters, kernel_name="python3",
                               progress_bar=False, cwd=os.getcwd())
    nbformat.write(collapse_streams(nbformat.read(tmp, as_version=4)), tmp)
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
