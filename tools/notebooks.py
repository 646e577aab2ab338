"""Keep the course notebooks in order: navigation cells, one canonical form, re-execution, a check.

    python tools/notebooks.py nav          # regenerate the navigation cells and the course index
    python tools/notebooks.py normalize    # rewrite every notebook in the canonical form
    python tools/notebooks.py run [NB ...] # re-execute in place (default: all), nav + normalize
    python tools/notebooks.py check        # exit 1, saying what to run, if anything above is stale
    python tools/notebooks.py lint         # ruff on every code cell, %%linux_only ones too
    python tools/notebooks.py simulate darwin windows [--notebooks NB ...]
                                           # run as on macOS / Windows; exit 1 unless all complete

`--dir DIR` works on another notebooks directory (the tests use a temporary one).

Rules:
- The course is COURSE below: each notebook's name with a one-sentence description, which the
  course map shows. The tool works on the notebooks of it that exist, in its order, and `check`
  fails naming any that is missing.
- Generated cells are markdown cells found by tag, never by position or text: `navigation` (the
  first and the last cell of every notebook) and `course-index` (in 00-start-here). A notebook's
  title is the first `# ` heading of its first markdown cell that is not generated.
- Canonical form: nbformat 4.5 with a cell id on every cell; kernelspec python3 and the kernel's
  language_info without the Python version (LANGUAGE_INFO: exactly what the course's kernel
  reports, see lab-settings/, so JupyterLab finds nothing to change when the kernel starts and
  the notebook does not open as modified); widget state kept; no execution timing; outputs and
  execution counts are kept (nbval compares them); JSON as nbformat writes it.
- Predictions: code cells tagged `prediction` (from a Prediction up to its reveal) are stored
  with no outputs and no execution count, so the stored notebook never shows an answer; nbval
  still runs them but compares nothing. The numbers they took are given back (a Run All is
  stored 1..n), and the widget state that only their outputs used goes too. `check` names every
  tagged cell that has outputs or a count.
- `run` uses the python3 kernel of the Python running this tool, with each notebook's directory as
  the working directory and a timeout per cell; the course must run in under COURSE_BUDGET_SECONDS.
- `lint` runs ruff on copies of the notebooks in which the `%%linux_only` and `%%not_linux`
  lines are comments: ruff reads no cell that starts with a cell magic, and these are most of the
  experiments. Its messages name the course's notebooks.
- `simulate` runs each notebook the same way, but by a kernel started with HANDSHAKE_LAB_PLATFORM
  set (see handshake_lab/platforms.py), and writes nothing: the stored outputs are Linux's. A
  notebook passes when no cell raised, no output holds a traceback, every `%%linux_only`
  cell printed its skip sentence instead of running, and every prediction it asked was revealed.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

import nbformat

#: The course in order: each notebook's name and the one sentence the course map gives it.
COURSE = {
    "00-start-here": (
        "the course's one idea, what this machine can show you (the doctor), and how the "
        "predict → observe → explain cells and the widgets work."
    ),
    "01-sockets-and-echo": (
        "make a TCP connection on loopback with the plain socket calls, then with the lab's "
        "helpers, and read what the kernel holds for it."
    ),
    "02-where-is-the-handshake": (
        "find by experiment which call does the handshake: the kernel finishes it before "
        "`accept()` is called, shown on a recorded timeline."
    ),
    "03-step-through": (
        "drive a client and a server one real socket call per click, and read the kernel's "
        "table of states after every call."
    ),
    "04-backlog-and-the-accept-queue": (
        "what `listen(backlog)` really limits, what a full accept queue does to the next "
        "client's SYN, and how a server can wait for data before `accept()` wakes up."
    ),
    "05-packets-and-sequence-numbers": (
        "read a real handshake's SYN, SYN+ACK and ACK with the sequence and acknowledgement "
        "numbers the kernels chose, on a ladder diagram."
    ),
    "06-closing": (
        "what `close()` starts: the FIN exchange, CLOSE_WAIT and TIME_WAIT, restarting a server "
        "with `SO_REUSEADDR`, and the reset that skips it all."
    ),
    "07-many-clients": (
        "serve many clients at once, with a thread per connection and with one `selectors` "
        "loop, and watch the kernel finish their handshakes while the server is busy."
    ),
    "08-lost-segments": (
        "lose one SYN, SYN+ACK or final ACK of a real handshake and watch the kernels' "
        "retransmission timers repair it."
    ),
}
COURSE_MAP = next(iter(COURSE))
DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "notebooks"
NAV_TAG = "navigation"
INDEX_TAG = "course-index"
GENERATED_TAGS = (NAV_TAG, INDEX_TAG)
GENERATED_NOTE = "<!-- generated by tools/notebooks.py: edit the tool, not this cell -->"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# ipykernel's language_info without "version". JupyterLab writes the kernel's language_info into
# the notebook when the kernel starts and marks the notebook modified unless it is unchanged;
# lab-settings/ipython_kernel_config.py makes the course's kernel leave the version out, so
# this holds on any Python 3 (tests/test_notebooks_tool.py asks a real kernel).
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
PREDICTION_TAG = "prediction"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Widget state ("widgets") is kept: with it, JupyterLab and GitHub show the stored widgets
# before anything runs, instead of "Error displaying widget: model not found".
DROPPED_NOTEBOOK_METADATA = ("orig_nbformat", "orig_nbformat_minor")
# Execution timing, written by JupyterLab and nbclient ("execution") and by nbextensions.
DROPPED_CELL_METADATA = ("execution", "ExecuteTime")
CELL_TIMEOUT_SECONDS = 120
NOTEBOOK_BUDGET_SECONDS = 20
COURSE_BUDGET_SECONDS = 90
RUN_HINT = "run `make notebooks-run`"
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


# -- reading the course ---------------------------------------------------------------------------
def course_paths(directory: Path) -> list[Path]:
    """The course's notebooks that exist in `directory`, in course order."""
    return [
        directory / f"{stem}.ipynb" for stem in COURSE if (directory / f"{stem}.ipynb").is_file()
    ]


def missing_notebooks(directory: Path) -> list[Path]:
    return [
        directory / f"{stem}.ipynb"
        for stem in COURSE
        if not (directory / f"{stem}.ipynb").is_file()
    ]


def read(path: Path) -> nbformat.NotebookNode:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing cell ids: normalize() adds them
        return nbformat.read(path, as_version=4)


def _generated(cell) -> bool:
    return any(tag in cell.get("metadata", {}).get("tags", []) for tag in GENERATED_TAGS)


def _title_cell_lines(notebook) -> list[str]:
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and not _generated(cell):
            return cell.source.splitlines()
    return []


def title_of(notebook, stem: str) -> str:
    """The first `# ` heading of the first authored markdown cell, without a leading number."""
    for line in _title_cell_lines(notebook):
        if line.startswith("# "):
            return re.sub(r"^\d{1,2}\s*[-.:·—–]?\s*", "", line[2:].strip()) or line[2:].strip()
    return stem[3:].replace("-", " ").capitalize()


def link(stem: str, title: str) -> str:
    return f"{stem[:2]} {title}"


# -- generated cells ------------------------------------------------------------------------------
def navigation_source(stems: list[str], index: int, titles: dict[str, str]) -> str:
    """`[← previous](...) · [Course map](...) · [next →](...)` for the notebook at `index`."""
    parts = []
    if index > 0:
        previous = stems[index - 1]
        parts.append(f"[← {link(previous, titles[previous])}]({previous}.ipynb)")
    if stems[index] != COURSE_MAP:
        parts.append(f"[Course map]({COURSE_MAP}.ipynb)")
    if index + 1 < len(stems):
        following = stems[index + 1]
        parts.append(f"[{link(following, titles[following])} →]({following}.ipynb)")
    return f"{GENERATED_NOTE}\n" + " · ".join(parts)


def index_source(stems: list[str], titles: dict[str, str]) -> str:
    """The course map: every notebook's link and its sentence from COURSE."""
    lines = [GENERATED_NOTE, "## The notebooks", ""]
    for stem in stems:
        lines.append(f"- [{link(stem, titles[stem])}]({stem}.ipynb): {COURSE[stem]}")
    return "\n".join(lines)


def _markdown(cell_id: str, tag: str, source: str):
    cell = nbformat.v4.new_markdown_cell(source, id=cell_id)
    cell.metadata = {"editable": False, "tags": [tag]}
    return cell


def with_navigation(notebook, stem: str, stems: list[str], titles: dict[str, str]):
    """A copy of `notebook` with its navigation cells (and, in the map, the index) regenerated."""
    notebook = copy.deepcopy(notebook)
    source = navigation_source(stems, stems.index(stem), titles)
    cells = [
        cell for cell in notebook.cells if NAV_TAG not in cell.get("metadata", {}).get("tags", [])
    ]
    if stem == COURSE_MAP:
        index_cell = _markdown(INDEX_TAG, INDEX_TAG, index_source(stems, titles))
        position = next(
            (i for i, cell in enumerate(cells) if INDEX_TAG in cell.metadata.get("tags", [])), None
        )
        if position is None:
            title = next((i for i, cell in enumerate(cells) if cell.cell_type == "markdown"), -1)
            cells.insert(title + 1, index_cell)
        else:
            index_cell.id = cells[position].get("id", INDEX_TAG)
            cells[position] = index_cell
    notebook.cells = [
        _markdown("navigation-top", NAV_TAG, source),
        *cells,
        _markdown("navigation-bottom", NAV_TAG, source),
    ]
    return notebook


# -- canonical form -------------------------------------------------------------------------------
def normalize(notebook):
    """A copy of `notebook` in the canonical form (see the module docstring)."""
    notebook = copy.deepcopy(notebook)
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    metadata = {
        key: value
        for key, value in notebook.metadata.items()
        if key not in DROPPED_NOTEBOOK_METADATA
    }
    metadata["kernelspec"] = dict(KERNELSPEC)
    metadata["language_info"] = copy.deepcopy(LANGUAGE_INFO)
    notebook.metadata = nbformat.from_dict(metadata)
    _clear_predictions(notebook)
    seen: set[str] = set()
    for number, cell in enumerate(notebook.cells):
        cell_id = cell.get("id", "")
        if not _CELL_ID.match(cell_id) or cell_id in seen:
            digest = hashlib.sha256(f"{number}\0{cell.source}".encode()).hexdigest()
            cell_id = next(digest[i : i + 8] for i in range(0, 56) if digest[i : i + 8] not in seen)
        cell.id = cell_id
        seen.add(cell_id)
        for key in DROPPED_CELL_METADATA:
            cell.metadata.pop(key, None)
    return notebook


def is_prediction(cell) -> bool:
    return cell.cell_type == "code" and PREDICTION_TAG in cell.get("metadata", {}).get("tags", [])


def _widget_models(outputs) -> set[str]:
    return {
        output["data"][WIDGET_VIEW]["model_id"]
        for output in outputs
        if WIDGET_VIEW in output.get("data", {}) and "model_id" in output["data"][WIDGET_VIEW]
    }


def _reachable(models: dict, roots: set[str]) -> set[str]:
    """The widget models `roots` show, with every model they refer to ("IPY_MODEL_<id>")."""
    seen: set[str] = set()
    todo = [root for root in roots if root in models]
    while todo:
        model_id = todo.pop()
        if model_id in seen:
            continue
        seen.add(model_id)
        text = json.dumps(models[model_id].get("state", {}))
        todo.extend(ref for ref in re.findall(r"IPY_MODEL_([0-9a-zA-Z_-]+)", text) if ref in models)
    return seen


def _clear_predictions(notebook) -> None:
    """Store cells tagged prediction with no outputs and no count, number the other cells as
    if they had not run (so a Run All stays 1..n; an out-of-order run stays out of order), and
    drop the widget state that only their outputs showed (it may hold the answer)."""
    cleared, kept = [], []
    numbers_taken = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if is_prediction(cell):
            cleared.extend(cell.outputs)
            numbers_taken += cell.execution_count is not None
            cell.outputs = []
            cell.execution_count = None
            continue
        kept.extend(cell.outputs)
        if cell.execution_count is not None and numbers_taken:
            cell.execution_count -= numbers_taken
            for output in cell.outputs:
                if output.get("output_type") == "execute_result":
                    output["execution_count"] = cell.execution_count
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {})
    models = state.get("state") if isinstance(state, dict) else None
    if not cleared or not isinstance(models, dict):
        return
    shown = _reachable(models, _widget_models(kept))
    for model_id in _reachable(models, _widget_models(cleared)) - shown:
        del models[model_id]


def canonical_text(notebook) -> str:
    text = nbformat.writes(notebook)
    return text if text.endswith("\n") else text + "\n"


def _course(directory: Path) -> tuple[list[Path], dict, dict[str, str]]:
    paths = course_paths(directory)
    notebooks = {path.stem: read(path) for path in paths}
    titles = {stem: title_of(notebook, stem) for stem, notebook in notebooks.items()}
    return paths, notebooks, titles


def expected_texts(directory: Path) -> dict[Path, tuple[str, str, str]]:
    """Per notebook: (text on disk, normalized text, normalized text with navigation)."""
    paths, notebooks, titles = _course(directory)
    stems = [path.stem for path in paths]
    result = {}
    for path in paths:
        notebook = notebooks[path.stem]
        navigated = with_navigation(notebook, path.stem, stems, titles)
        result[path] = (
            path.read_text(encoding="utf-8"),
            canonical_text(normalize(notebook)),
            canonical_text(normalize(navigated)),
        )
    return result


def _write_if_changed(path: Path, text: str) -> bool:
    if path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def write_navigation(directory: Path) -> list[Path]:
    """Regenerate navigation and index (and normalize); return the notebooks changed."""
    return [
        path
        for path, (_, _, text) in expected_texts(directory).items()
        if _write_if_changed(path, text)
    ]


def write_normalized(directory: Path) -> list[Path]:
    """Rewrite every notebook in the canonical form; return the notebooks changed."""
    return [
        path
        for path, (_, text, _) in expected_texts(directory).items()
        if _write_if_changed(path, text)
    ]


# -- checking -------------------------------------------------------------------------------------
def execution_problems(notebook) -> list[str]:
    """Outputs without a count, or counts over the executed code cells that are not 1..n."""
    problems = []
    counts = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") and cell.get("execution_count") is None:
            problems.append(f"cell {number} has outputs but no execution count")
        if cell.get("execution_count") is not None:
            counts.append(cell.execution_count)
    if counts != list(range(1, len(counts) + 1)):
        problems.append(
            f"execution counts are {counts}, not 1..{len(counts)} in order "
            "(cells were run out of order or the kernel was restarted midway)"
        )
    return problems


def prediction_problems(notebook) -> list[str]:
    """Cells tagged prediction that store outputs or an execution count."""
    return [
        f"cell {number} (id {cell.get('id', '?')}) is tagged {PREDICTION_TAG} but has stored "
        "outputs or an execution count, which show the answer before the learner commits"
        for number, cell in enumerate(notebook.cells, start=1)
        if is_prediction(cell) and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def check(directory: Path) -> list[str]:
    """Every problem found, one sentence each naming the notebook and what to run."""
    problems = [
        f"{_shown(path)} is missing (the course in tools/notebooks.py lists it): "
        f"write it, then {RUN_HINT}"
        for path in missing_notebooks(directory)
    ]
    for path, (on_disk, normalized, navigated) in expected_texts(directory).items():
        notebook = read(path)
        for problem in prediction_problems(notebook):
            problems.append(
                f"{_shown(path)}: {problem}: run `python tools/notebooks.py normalize` "
                "(or `make notebooks-run`)"
            )
        for problem in execution_problems(notebook):
            problems.append(f"{_shown(path)}: {problem}: {RUN_HINT}")
        if on_disk != normalized:
            problems.append(
                f"{_shown(path)} is not in canonical form: run "
                "`python tools/notebooks.py normalize` (or `make notebooks-run`)"
            )
        elif normalized != navigated:
            problems.append(
                f"{_shown(path)}: its navigation or course-index cells are stale: "
                "run `python tools/notebooks.py nav` (or `make notebooks-run`)"
            )
    return problems


# -- running --------------------------------------------------------------------------------------
def _current_environment_kernel():
    """A kernel manager class for python3 from this very Python (not some other kernelspec)."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class CurrentEnvironmentSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES,
                **ipykernel.kernelspec.get_kernel_dict(),
            )

    class CurrentEnvironmentKernel(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("kernel_spec_manager", CurrentEnvironmentSpecs())
            super().__init__(**kwargs)

    return CurrentEnvironmentKernel


def _client(notebook, path: Path, **options):
    """An nbclient for `notebook`, run by this Python's kernel in `path`'s directory."""
    from nbclient import NotebookClient

    return NotebookClient(
        notebook,
        kernel_manager_class=_current_environment_kernel(),
        kernel_name="python3",
        timeout=CELL_TIMEOUT_SECONDS,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
        **options,
    )


def execute(path: Path) -> float:
    """Run one notebook in place (its directory as cwd); return the wall time in seconds."""
    notebook = read(path)
    started = time.monotonic()
    _client(notebook, path, store_widget_state=True).execute()
    elapsed = time.monotonic() - started
    path.write_text(canonical_text(normalize(notebook)), encoding="utf-8")
    return elapsed


def chosen_paths(directory: Path, names: list[str]) -> list[Path] | None:
    """The course's notebooks named (all when none is), or None after saying which is unknown."""
    paths = course_paths(directory)
    if not names:
        return paths
    by_name = {path.stem: path for path in paths}
    chosen = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        if stem not in by_name:
            print(
                f"{name}: not a notebook of the course in {_shown(directory)}; "
                f"choose from {', '.join(by_name)}",
                file=sys.stderr,
            )
            return None
        chosen.append(by_name[stem])
    return chosen


def run(directory: Path, names: list[str]) -> int:
    paths = chosen_paths(directory, names)
    if paths is None:
        return 2
    from nbclient.exceptions import CellExecutionError

    total = 0.0
    for path in paths:
        try:
            seconds = execute(path)
        except CellExecutionError as error:
            print(
                f"{_shown(path)} failed (left unchanged): fix the cell below and run again\n"
                f"{error}",
                file=sys.stderr,
            )
            return 1
        total += seconds
        print(f"{seconds:6.1f} s  {path.name}")
        if seconds > NOTEBOOK_BUDGET_SECONDS:
            print(
                f"WARNING: {path.name} took {seconds:.1f} s, over the "
                f"{NOTEBOOK_BUDGET_SECONDS} s budget for one notebook"
            )
    print(f"{total:6.1f} s  total for {len(paths)} notebooks")
    if total > COURSE_BUDGET_SECONDS:
        print(
            f"WARNING: the notebooks took {total:.1f} s, over the "
            f"{COURSE_BUDGET_SECONDS} s budget for the course"
        )
    write_navigation(directory)
    return 0


# -- lint ------------------------------------------------------------------------------------------
#: The cell magics of handshake_lab.show.platform_cells: the rest of such a cell is Python.
PLATFORM_MAGICS = ("%%linux_only", "%%not_linux")


def lint(directory: Path) -> int:
    """ruff's exit status over every notebook's code cells, platform cells included."""
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as temporary:
        copies = []
        for path in course_paths(directory):
            notebook = read(path)
            for cell in notebook.cells:
                if cell.cell_type == "code" and cell.source.startswith(PLATFORM_MAGICS):
                    cell.source = "# " + cell.source[2:]  # the magic's line, as a comment
            copy = Path(temporary) / path.name
            copy.write_text(canonical_text(notebook), encoding="utf-8")
            copies.append(copy)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--config",
                str(root / "pyproject.toml"),
                "--no-cache",
                *map(str, copies),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    shown = _shown(directory)
    for stream, text in ((sys.stdout, done.stdout), (sys.stderr, done.stderr)):
        print(text.replace(temporary, shown), end="", file=stream)
    return done.returncode


# -- the other platforms ---------------------------------------------------------------------------
_MAKES_PREDICTION = re.compile(r"^(\w+) = Prediction\(", re.MULTILINE)


def simulation_problems(notebook) -> list[str]:
    """What a notebook run under a simulated platform showed that it must not: an error, a
    traceback, a %%linux_only cell that did not say it was skipped, or a prediction asked and
    never revealed (its question stays unanswered there)."""
    from handshake_lab.show.platform_cells import SKIPPED
    from handshake_lab.show.prediction import NOT_COMMITTED

    problems, asked = [], {}
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        text = "".join(
            output.get("text", "") + output.get("data", {}).get("text/plain", "")
            for output in outputs
        )
        errors = [output for output in outputs if output.get("output_type") == "error"]
        first_line = cell.source.split("\n", 1)[0]
        if errors:
            error = errors[0]
            problems.append(f"cell {number} raised {error.get('ename')}: {error.get('evalue')}")
        elif "Traceback (most recent call last)" in text:
            problems.append(f"cell {number} printed a traceback")
        elif first_line.startswith("%%linux_only") and SKIPPED not in text:
            problems.append(f"cell {number} is %%linux_only but did not say it was skipped")
        if SKIPPED in text:
            continue
        for name in _MAKES_PREDICTION.findall(cell.source):
            asked[name] = number
        for name in [name for name in asked if f"{name}.reveal(" in cell.source]:
            if NOT_COMMITTED in text:  # the reveal ran (nothing was committed in this run)
                del asked[name]
    problems += [f"cell {at} asks {name}, and no cell revealed it" for name, at in asked.items()]
    return problems


def _simulate_one(path: Path, platform: str) -> bool:
    """Run one notebook as on `platform`, print its verdict; True when it had problems."""
    notebook = read(path)
    started = time.monotonic()
    _client(notebook, path, allow_errors=True).execute()
    problems = simulation_problems(notebook)
    seconds = time.monotonic() - started
    verdict = "completed" if not problems else f"{len(problems)} problem(s)"
    print(f"{seconds:6.1f} s  {platform:<8} {path.name}: {verdict}", flush=True)
    for problem in problems:
        print(f"         {problem}", flush=True)
    return bool(problems)


def simulate(directory: Path, platforms: list[str], names: list[str]) -> int:
    """Run the notebooks as on each platform; 0 when every one completed as it must."""
    from handshake_lab import platforms as lab_platforms

    paths = chosen_paths(directory, names)
    if paths is None:
        return 2
    failed = 0
    try:
        for platform in platforms:
            os.environ[lab_platforms.SWITCH] = platform  # the kernel inherits it
            try:
                lab_platforms.current()
            except ValueError as error:
                print(error, file=sys.stderr)
                return 2
            for path in paths:
                failed += _simulate_one(path, platform)
    finally:
        os.environ.pop(lab_platforms.SWITCH, None)
    return 1 if failed else 0


# -- command line ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIRECTORY,
        help="the notebooks directory (default: notebooks/ of this repository)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("nav", help="regenerate navigation cells and the course index")
    commands.add_parser("normalize", help="rewrite the notebooks in canonical form")
    run_parser = commands.add_parser("run", help="re-execute notebooks, then nav + normalize")
    run_parser.add_argument("notebooks", nargs="*", help="names like 03-step-through (default all)")
    commands.add_parser("check", help="exit 1 if any notebook is stale, unnormalized or missing")
    commands.add_parser("lint", help="ruff on every code cell, %%linux_only cells included")
    simulate_parser = commands.add_parser(
        "simulate", help="run the notebooks as on macOS or Windows; exit 1 unless each completes"
    )
    simulate_parser.add_argument("platforms", nargs="+", help="darwin, windows")
    simulate_parser.add_argument("--notebooks", nargs="*", default=[], help="default: all")
    arguments = parser.parse_args(argv)
    directory: Path = arguments.dir
    if not directory.is_dir():
        print(f"{directory} is not a directory: pass --dir NOTEBOOKS_DIRECTORY", file=sys.stderr)
        return 2
    if arguments.command == "nav":
        changed = write_navigation(directory)
    elif arguments.command == "normalize":
        changed = write_normalized(directory)
    elif arguments.command == "run":
        return run(directory, arguments.notebooks)
    elif arguments.command == "lint":
        return lint(directory)
    elif arguments.command == "simulate":
        return simulate(directory, arguments.platforms, arguments.notebooks)
    else:
        problems = check(directory)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"{len(course_paths(directory))} notebooks up to date")
        return 1 if problems else 0
    for path in changed:
        print(f"rewrote {_shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
