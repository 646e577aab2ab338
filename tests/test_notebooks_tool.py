"""tools/notebooks.py on small notebooks in a temporary directory, and notebooks/sanitize.cfg."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("notebooks_tool", ROOT / "tools" / "notebooks.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

TITLES = {
    "00-start-here": "Start here",
    "01-sockets-and-echo": "01 · Sockets and echo",
    "02-where-is-the-handshake": "Where is the handshake?",
    "03-step-through": "Step through",
    "04-backlog-and-the-accept-queue": "Backlog and the accept queue",
    "05-packets-and-sequence-numbers": "Packets and sequence numbers",
    "06-closing": "Closing",
    "07-many-clients": "Many clients",
    "08-lost-segments": "Lost segments",
}


def write_notebook(directory: Path, stem: str, *, executed: bool = True, minor: int = 5) -> Path:
    """A notebook as JupyterLab would save it: a title cell with a goal, two run code cells."""
    notebook = new_notebook(
        cells=[
            new_markdown_cell(f"# {TITLES[stem]}\n\n**Goal:** learn {stem[3:]}.\n\nMore text."),
            new_code_cell("print('hello')"),
            new_code_cell("1 + 1"),
        ]
    )
    if executed:
        notebook.cells[1].execution_count = 1
        notebook.cells[1].outputs = [new_output("stream", name="stdout", text="hello\n")]
        notebook.cells[2].execution_count = 2
        notebook.cells[2].outputs = [
            new_output("execute_result", {"text/plain": "2"}, execution_count=2)
        ]
        notebook.cells[2].metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {
        "name": "python",
        "version": "3.12.4",
        "mimetype": "text/x-python",
    }
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    if minor < 5:
        notebook.nbformat_minor = minor
        for cell in notebook.cells:
            del cell["id"]
    path = directory / f"{stem}.ipynb"
    path.write_text(nbformat.writes(notebook, version=nbformat.NO_CONVERT), encoding="utf-8")
    return path


def course(directory: Path, stems=tuple(TITLES)) -> Path:
    for stem in stems:
        write_notebook(directory, stem)
    return directory


def sources(path: Path, tag: str) -> list[str]:
    return [
        cell.source
        for cell in nbformat.read(path, as_version=4).cells
        if tag in cell.metadata.get("tags", [])
    ]


def test_nav_puts_a_navigation_cell_first_and_last(tmp_path):
    course(tmp_path, list(TITLES)[:3])
    assert tool.main(["--dir", str(tmp_path), "nav"]) == 0
    cells = nbformat.read(tmp_path / "01-sockets-and-echo.ipynb", as_version=4).cells
    assert cells[0].metadata["tags"] == cells[-1].metadata["tags"] == ["navigation"]
    assert cells[0].source == cells[-1].source
    assert cells[0].source.splitlines()[-1] == (
        "[← 00 Start here](00-start-here.ipynb) · [Course map](00-start-here.ipynb) · "
        "[02 Where is the handshake? →](02-where-is-the-handshake.ipynb)"
    )
    assert cells[1].source.startswith("# 01 · Sockets and echo")  # the authored cells stay
    assert len(cells) == 5
    first = sources(tmp_path / "00-start-here.ipynb", "navigation")[0].splitlines()[-1]
    last = sources(tmp_path / "02-where-is-the-handshake.ipynb", "navigation")[0].splitlines()[-1]
    assert first == "[01 Sockets and echo →](01-sockets-and-echo.ipynb)"
    assert last == (
        "[← 01 Sockets and echo](01-sockets-and-echo.ipynb) · [Course map](00-start-here.ipynb)"
    )


def test_nav_skips_missing_notebooks_in_links(tmp_path):
    course(tmp_path, ["00-start-here", "02-where-is-the-handshake", "06-closing"])
    tool.main(["--dir", str(tmp_path), "nav"])
    (nav,) = set(sources(tmp_path / "02-where-is-the-handshake.ipynb", "navigation"))
    assert "(00-start-here.ipynb)" in nav and "[06 Closing →](06-closing.ipynb)" in nav


def test_the_course_index_gives_every_notebook_its_sentence_from_the_course_table(tmp_path):
    course(tmp_path, list(TITLES)[:3])
    tool.main(["--dir", str(tmp_path), "nav"])
    (index,) = sources(tmp_path / "00-start-here.ipynb", "course-index")
    assert index.splitlines()[-3:] == [
        f"- [00 Start here](00-start-here.ipynb): {tool.COURSE['00-start-here']}",
        f"- [01 Sockets and echo](01-sockets-and-echo.ipynb): {tool.COURSE['01-sockets-and-echo']}",
        "- [02 Where is the handshake?](02-where-is-the-handshake.ipynb): "
        f"{tool.COURSE['02-where-is-the-handshake']}",
    ]
    assert "learn start-here" not in index  # not the notebook's own first lines
    cells = nbformat.read(tmp_path / "00-start-here.ipynb", as_version=4).cells
    assert [cell.metadata.get("tags", []) for cell in cells[:3]] == [
        ["navigation"],
        [],
        ["course-index"],
    ]  # right after the title cell
    assert sources(tmp_path / "01-sockets-and-echo.ipynb", "course-index") == []


def test_nav_replaces_its_cells_and_is_idempotent(tmp_path):
    course(tmp_path, list(TITLES)[:3])
    tool.main(["--dir", str(tmp_path), "nav"])
    before = {path: path.read_text() for path in tmp_path.iterdir()}
    assert tool.write_navigation(tmp_path) == []
    assert {path: path.read_text() for path in tmp_path.iterdir()} == before
    # Moving the index cell and renaming a notebook: the index is rewritten where it stands.
    start = tmp_path / "00-start-here.ipynb"
    notebook = nbformat.read(start, as_version=4)
    notebook.cells.append(notebook.cells.pop(2))
    nbformat.write(notebook, start)
    write_notebook(tmp_path, "02-where-is-the-handshake")
    text = (tmp_path / "02-where-is-the-handshake.ipynb").read_text()
    (tmp_path / "02-where-is-the-handshake.ipynb").write_text(
        text.replace("Where is the handshake?", "Where does the handshake happen?")
    )
    assert set(tool.write_navigation(tmp_path)) == set(tmp_path.iterdir())
    cells = nbformat.read(start, as_version=4).cells
    assert cells[-2].metadata["tags"] == ["course-index"]
    assert "Where does the handshake happen?" in cells[-2].source
    assert sum("navigation" in c.metadata.get("tags", []) for c in cells) == 2


def test_normalize_gives_the_canonical_form_and_is_idempotent(tmp_path):
    path = write_notebook(tmp_path, "00-start-here", minor=4)
    notebook = tool.normalize(tool.read(path))
    assert (notebook.nbformat, notebook.nbformat_minor) == (4, 5)
    assert notebook.metadata == {
        "kernelspec": {
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "name": "python3",
        },
        "language_info": tool.LANGUAGE_INFO,
        "widgets": {"application/vnd.jupyter.widget-state+json": {}},
    }
    assert all(re.fullmatch(r"[0-9a-f]{8}", cell.id) for cell in notebook.cells)
    assert len({cell.id for cell in notebook.cells}) == 3
    assert "execution" not in notebook.cells[2].metadata
    assert [cell.get("execution_count") for cell in notebook.cells] == [None, 1, 2]
    assert notebook.cells[2].outputs[0]["data"] == {"text/plain": "2"}  # outputs are kept
    text = tool.canonical_text(notebook)
    assert text.startswith('{\n "cells": [\n  {\n   "cell_type"')  # 1-space indent
    assert tool.canonical_text(tool.normalize(nbformat.reads(text, as_version=4))) == text
    tool.main(["--dir", str(tmp_path), "normalize"])
    once = path.read_text()
    tool.main(["--dir", str(tmp_path), "normalize"])
    assert path.read_text() == once
    assert tool.write_normalized(tmp_path) == []


def test_normalize_keeps_good_ids_and_replaces_duplicates(tmp_path):
    notebook = new_notebook(
        cells=[new_markdown_cell("# A"), new_code_cell("x"), new_code_cell("y")]
    )
    notebook.cells[0].id = "title"
    notebook.cells[1].id = notebook.cells[2].id = "same"
    ids = [cell.id for cell in tool.normalize(notebook).cells]
    assert ids[:2] == ["title", "same"] and ids[2] not in ("title", "same")


def test_check_passes_on_a_complete_navigated_course(tmp_path, capsys):
    course(tmp_path)
    tool.main(["--dir", str(tmp_path), "nav"])
    assert tool.check(tmp_path) == []
    assert tool.main(["--dir", str(tmp_path), "check"]) == 0
    assert f"{len(tool.COURSE)} notebooks up to date" in capsys.readouterr().out


def test_check_names_missing_notebooks(tmp_path, capsys):
    course(tmp_path, [stem for stem in TITLES if stem != "04-backlog-and-the-accept-queue"])
    tool.main(["--dir", str(tmp_path), "nav"])
    assert tool.main(["--dir", str(tmp_path), "check"]) == 1
    (problem,) = capsys.readouterr().err.splitlines()
    assert "04-backlog-and-the-accept-queue.ipynb is missing" in problem
    assert "make notebooks-run" in problem


def test_check_catches_stale_navigation(tmp_path):
    course(tmp_path)
    tool.main(["--dir", str(tmp_path), "nav"])
    path = tmp_path / "03-step-through.ipynb"
    path.write_text(path.read_text().replace("# Step through", "# Stepping through"))
    problems = tool.check(tmp_path)
    # Its own cells are fine; the neighbours' links and the index name the old title.
    stale = sorted(p.split(":")[0] for p in problems)
    assert [Path(name).name for name in stale] == [
        "00-start-here.ipynb",
        "02-where-is-the-handshake.ipynb",
        "04-backlog-and-the-accept-queue.ipynb",
    ]
    assert all("navigation or course-index cells are stale" in p for p in problems)
    assert all("tools/notebooks.py nav" in p for p in problems)


def test_check_catches_a_notebook_without_navigation(tmp_path):
    course(tmp_path)
    tool.write_navigation(tmp_path)
    path = write_notebook(tmp_path, "06-closing")
    path.write_text(tool.canonical_text(tool.normalize(tool.read(path))))
    (problem,) = tool.check(tmp_path)
    assert "06-closing.ipynb" in problem and "stale" in problem


def test_check_catches_an_unnormalized_notebook(tmp_path):
    course(tmp_path)
    tool.write_navigation(tmp_path)
    path = tmp_path / "05-packets-and-sequence-numbers.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["language_info"]["version"] = "3.13.0"
    nbformat.write(notebook, path)
    (problem,) = tool.check(tmp_path)
    assert "05-packets-and-sequence-numbers.ipynb is not in canonical form" in problem
    assert "tools/notebooks.py normalize" in problem


@pytest.mark.parametrize(("stem", "sentence"), list(tool.COURSE.items()))
def test_every_notebook_has_one_whole_sentence_in_the_course_table(stem, sentence):
    assert re.fullmatch(r"\d\d-[a-z0-9-]+", stem)
    assert sentence[0].islower() and sentence.endswith(".")  # it follows "NN Title: "
    assert ". " not in sentence and "\n" not in sentence and len(sentence) <= 200
    assert not re.search(r"what you will learn|goal", sentence, re.IGNORECASE)


@pytest.mark.parametrize(
    ("counts", "outputs", "expected"),
    [
        ([1, 2], [True, True], []),
        ([None, None], [False, False], []),
        ([1, None], [True, False], []),
        ([None, 1], [True, True], ["cell 2 has outputs but no execution count"]),
        ([2, 3], [True, True], ["execution counts are [2, 3], not 1..2 in order"]),
        ([2, 1], [True, True], ["execution counts are [2, 1], not 1..2 in order"]),
    ],
)
def test_execution_counts_must_be_one_to_n(counts, outputs, expected):
    notebook = new_notebook(cells=[new_markdown_cell("# T")])
    for count, has_output in zip(counts, outputs, strict=True):
        cell = new_code_cell("print(1)", execution_count=count)
        if has_output:
            cell.outputs = [new_output("stream", name="stdout", text="1\n")]
        notebook.cells.append(cell)
    problems = tool.execution_problems(notebook)
    assert len(problems) == len(expected)
    assert all(p.startswith(e) for p, e in zip(problems, expected, strict=True))


def test_check_reports_execution_problems_with_what_to_run(tmp_path):
    course(tmp_path)
    tool.write_navigation(tmp_path)
    path = tmp_path / "07-many-clients.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[3].execution_count = None  # cells: navigation, title, code, code, navigation
    nbformat.write(notebook, path)
    (problem,) = tool.check(tmp_path)
    assert "07-many-clients.ipynb: cell 4 has outputs but no execution count" in problem
    assert problem.endswith("run `make notebooks-run`")


# -- cells tagged prediction ---------------------------------------------------------------------
def widget_view(model_id: str):
    return new_output(
        "display_data",
        {
            "text/plain": "Prediction(...)",
            "application/vnd.jupyter.widget-view+json": {
                "model_id": model_id,
                "version_major": 2,
                "version_minor": 0,
            },
        },
    )


def widget_model(**state):
    return {"model_module": "@jupyter-widgets/controls", "model_name": "X", "state": state}


def predicted_notebook():
    """A prediction (a widget), its experiment and reveal, then a plain widget cell, as run."""
    notebook = new_notebook(
        cells=[
            new_markdown_cell("# Start here"),
            new_code_cell("x = 1", execution_count=1),
            new_code_cell("p = Prediction('?', ['a', 'b'])", execution_count=2),
            new_markdown_cell("Now the experiment."),
            new_code_cell("print(p.reveal('seen', 1))", execution_count=3),
            new_code_cell("slider", execution_count=4),
        ]
    )
    for cell in (notebook.cells[2], notebook.cells[4]):
        cell.metadata["tags"] = ["prediction"]
    notebook.cells[2].outputs = [widget_view("box")]
    notebook.cells[4].outputs = [new_output("stream", name="stdout", text="So the answer is: b\n")]
    notebook.cells[5].outputs = [widget_view("slider")]
    notebook.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "state": {
                "box": widget_model(children=["IPY_MODEL_answer"], layout="IPY_MODEL_layout"),
                "answer": widget_model(value="So the answer is: b"),
                "layout": widget_model(),
                "slider": widget_model(layout="IPY_MODEL_layout"),
                "other": widget_model(),
            },
            "version_major": 2,
            "version_minor": 0,
        }
    }
    return notebook


def test_normalize_stores_prediction_cells_without_outputs_or_counts():
    notebook = tool.normalize(predicted_notebook())
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == [1, None, None, 2]  # 1..n again
    assert [len(cell.outputs) for cell in code] == [0, 0, 0, 1]
    models = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    # Only what the cleared outputs alone showed goes; the shared layout and the rest stay.
    assert sorted(models) == ["layout", "other", "slider"]
    text = tool.canonical_text(notebook)
    assert "answer is" not in text
    assert tool.canonical_text(tool.normalize(nbformat.reads(text, as_version=4))) == text
    assert tool.execution_problems(notebook) == []
    assert tool.prediction_problems(notebook) == []


def test_clearing_predictions_keeps_an_out_of_order_run_visible():
    notebook = predicted_notebook()
    notebook.cells[1].execution_count = 5  # run again after everything else
    notebook.cells[5].outputs = [
        new_output("execute_result", {"text/plain": "7"}, execution_count=4)
    ]
    normalized = tool.normalize(notebook)
    assert normalized.cells[5].execution_count == 2
    assert normalized.cells[5].outputs[0]["execution_count"] == 2
    (problem,) = tool.execution_problems(normalized)
    assert problem.startswith("execution counts are [5, 2], not 1..2 in order")


def test_check_names_the_notebook_and_cell_of_a_prediction_with_outputs(tmp_path):
    course(tmp_path)
    tool.write_navigation(tmp_path)
    path = tmp_path / "04-backlog-and-the-accept-queue.ipynb"
    notebook = nbformat.read(path, as_version=4)
    cell = notebook.cells[3]  # cells: navigation, title, code, code, navigation
    cell.metadata["tags"] = ["prediction"]
    nbformat.write(notebook, path)
    problems = tool.check(tmp_path)
    named = [p for p in problems if "is tagged prediction" in p]
    assert named == [
        f"{path}: cell 4 (id {cell.id}) is tagged prediction but has stored outputs or an "
        "execution count, which show the answer before the learner commits: run "
        "`python tools/notebooks.py normalize` (or `make notebooks-run`)"
    ]
    assert tool.main(["--dir", str(tmp_path), "normalize"]) == 0
    assert tool.check(tmp_path) == []


ASK_THE_KERNEL = """
import json, sys
from jupyter_client.manager import start_new_kernel
manager, client = start_new_kernel(kernel_name="python3", extra_arguments=sys.argv[1:])
try:
    info = client.kernel_info(reply=True, timeout=60)["content"]["language_info"]
    executed = client.execute_interactive("x = 1", timeout=60)["content"]["execution_count"]
finally:
    client.stop_channels()
    manager.shutdown_kernel(now=True)
print(json.dumps({"language_info": info, "execution_count": executed}))
"""


def test_the_stored_language_info_is_what_the_course_kernel_reports():
    """JupyterLab marks a notebook modified when the kernel's language_info differs from it."""
    config = ROOT / "lab-settings" / "ipython_kernel_config.py"
    result = subprocess.run(
        [sys.executable, "-c", ASK_THE_KERNEL, f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=tool.CELL_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["language_info"] == tool.LANGUAGE_INFO
    assert answer["execution_count"] == 1  # the config's line took no number
    stored = tool.normalize(new_notebook()).metadata["language_info"]
    assert stored == answer["language_info"]


def test_run_executes_in_place_in_the_notebooks_directory(tmp_path):
    path = write_notebook(tmp_path, "00-start-here", executed=False)
    notebook = nbformat.read(path, as_version=4)
    prediction = new_code_cell("print('So the answer is: 42')")
    prediction.metadata["tags"] = ["prediction"]
    notebook.cells.append(prediction)
    notebook.cells.append(new_code_cell("import os; os.path.basename(os.getcwd())"))
    nbformat.write(notebook, path)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notebooks.py"), "--dir", str(tmp_path), "run"],
        capture_output=True,
        text=True,
        timeout=tool.CELL_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s*\d+\.\d s  00-start-here\.ipynb$", result.stdout, re.MULTILINE)
    assert re.search(r"^\s*\d+\.\d s  total for 1 notebooks$", result.stdout, re.MULTILINE)
    cells = nbformat.read(path, as_version=4).cells
    code = [cell for cell in cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == [1, 2, None, 3]
    assert code[0].outputs[0]["text"] == "hello\n"
    assert code[2].outputs == []  # it ran, but stores nothing
    assert code[3].outputs[0]["data"]["text/plain"] == repr(tmp_path.name)
    assert cells[0].metadata["tags"] == ["navigation"]
    assert tool.execution_problems(nbformat.read(path, as_version=4)) == []
    assert [p for p in tool.check(tmp_path) if "00-start-here" in p] == []


def test_run_refuses_a_name_outside_the_course(tmp_path, capsys):
    write_notebook(tmp_path, "00-start-here")
    assert tool.main(["--dir", str(tmp_path), "run", "99-nope"]) == 2
    assert "99-nope: not a notebook of the course" in capsys.readouterr().err


# -- lint, and the simulated platforms ----------------------------------------------------------
def with_code_cells(path: Path, *sources: str) -> Path:
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.extend(new_code_cell(source) for source in sources)
    nbformat.write(notebook, path)
    return path


def test_lint_reads_the_cells_that_start_with_a_platform_magic(tmp_path, capsys):
    path = write_notebook(tmp_path, "00-start-here")
    with_code_cells(path, "%%linux_only the answer\nprint(undefined_answer)")
    assert tool.main(["--dir", str(tmp_path), "lint"]) == 1
    out = capsys.readouterr().out
    assert "F821" in out and "undefined_answer" in out, out
    assert "00-start-here.ipynb:cell 4" in out, out  # the course's name, not the copy's


def test_lint_passes_clean_platform_cells(tmp_path):
    path = write_notebook(tmp_path, "00-start-here")
    with_code_cells(path, "%%linux_only the answer\nprint('fine')", "%%not_linux\nprint(2)")
    assert tool.main(["--dir", str(tmp_path), "lint"]) == 0


SKIP_LINE = "Linux only: this cell shows the answer. It is skipped on macOS.\n"


@pytest.mark.parametrize(
    ("source", "output", "problem"),
    [
        ("print(1)", new_output("stream", name="stdout", text="1\n"), None),
        (
            "1 / 0",
            new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[]),
            "cell 1 raised ZeroDivisionError: division by zero",
        ),
        (
            "report()",
            new_output("stream", name="stderr", text="Traceback (most recent call last):\n"),
            "cell 1 printed a traceback",
        ),
        (
            "%%linux_only the answer\nprint(42)",
            new_output("stream", name="stdout", text="42\n"),
            "cell 1 is %%linux_only but did not say it was skipped",
        ),
        ("%%linux_only the answer\nprint(42)", new_output("stream", text=SKIP_LINE), None),
    ],
)
def test_a_simulated_run_must_show_no_error_and_every_skip_sentence(source, output, problem):
    cell = new_code_cell(source)
    cell.outputs = [output]
    expected = [problem] if problem else []
    assert tool.simulation_problems(new_notebook(cells=[cell])) == expected


def test_a_simulated_run_must_reveal_every_prediction_it_asked():
    from handshake_lab.show.prediction import NOT_COMMITTED

    def cell(source: str, text: str = ""):
        made = new_code_cell(source)
        made.outputs = [new_output("stream", name="stdout", text=text)] if text else []
        return made

    ask = 'p_one = Prediction("?", ["a", "b"])\np_two = Prediction("?", ["a", "b"])'
    revealed = cell("print(p_one.reveal('measured', 1))", NOT_COMMITTED + "\n")
    skipped = cell("%%linux_only the answer\nprint(p_two.reveal('measured', 0))", SKIP_LINE)
    notebook = new_notebook(cells=[cell(ask), revealed, skipped])
    assert tool.simulation_problems(notebook) == ["cell 1 asks p_two, and no cell revealed it"]
    skipped_ask = cell("%%linux_only a question\n" + ask, SKIP_LINE)
    assert tool.simulation_problems(new_notebook(cells=[skipped_ask, skipped])) == []


def simulate(directory: Path, platform: str) -> subprocess.CompletedProcess:
    """`tools/notebooks.py simulate PLATFORM` on `directory`, in a process of its own."""
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notebooks.py"), "--dir", str(directory)]
        + ["simulate", platform],
        capture_output=True,
        text=True,
        timeout=tool.CELL_TIMEOUT_SECONDS,
        check=False,
    )


def test_simulate_runs_a_notebook_as_on_another_platform_and_writes_nothing(tmp_path):
    path = write_notebook(tmp_path, "00-start-here")
    with_code_cells(
        path,
        "%load_ext handshake_lab",
        "%%linux_only the answer\nraise SystemExit('a Linux-only cell ran')",
        "%%not_linux\nimport handshake_lab.platforms as p\nprint('behaving as', p.name())",
    )
    before = path.read_text(encoding="utf-8")
    result = simulate(tmp_path, "windows")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"windows\s+00-start-here\.ipynb: completed$", result.stdout, re.MULTILINE)
    assert path.read_text(encoding="utf-8") == before


def test_simulate_names_the_cell_that_failed(tmp_path):
    path = write_notebook(tmp_path, "00-start-here")
    with_code_cells(path, "%load_ext handshake_lab", "%%not_linux\n1 / 0")
    result = simulate(tmp_path, "darwin")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cell 5 raised ZeroDivisionError: division by zero" in result.stdout, result.stdout


def test_simulate_refuses_a_platform_it_cannot_simulate(tmp_path, capsys):
    write_notebook(tmp_path, "00-start-here")
    assert tool.main(["--dir", str(tmp_path), "simulate", "freebsd"]) == 2
    assert "set it to darwin, windows or linux" in capsys.readouterr().err


# -- notebooks/sanitize.cfg ---------------------------------------------------------------------
def sanitize_patterns() -> list[tuple[str, str]]:
    """The (regex, replace) pairs, read the way nbval reads them."""
    text = (ROOT / "notebooks" / "sanitize.cfg").read_text(encoding="utf-8")
    return re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)


def sanitize(text: str) -> str:
    for regex, replace in sanitize_patterns():
        text = re.sub(regex, replace, text)
    return text


def test_sanitize_cfg_has_only_well_formed_pairs():
    text = (ROOT / "notebooks" / "sanitize.cfg").read_text(encoding="utf-8")
    pairs = sanitize_patterns()
    assert len(pairs) == text.count("\nregex: ") == text.count("\nreplace: ")
    for regex, replace in pairs:
        assert "^" not in regex.replace("[^", "") and not regex.endswith("$"), regex
        assert replace == replace.strip(), f"trailing space in {replace!r}"
        re.compile(regex)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # ports
        ("('127.0.0.1', 41557)", "('127.0.0.1', PORT)"),
        ("laddr=('::1', 41557, 0, 0)", "laddr=('::1', PORT, 0, 0)"),
        ("listening on 127.0.0.1:41557 now", "listening on 127.0.0.1:PORT now"),
        ("[::1]:41557", "[::1]:PORT"),
        ("connect() returned local port 50252", "connect() returned local port PORT"),
        ("peer port 50252; Port 8", "peer port PORT; Port PORT"),
        ("0100007F:A255 0100007F:1F90 0A", "0100007F:PORT 0100007F:PORT 0A"),
        (
            "<socket.socket fd=5, family=2, type=1, proto=6, laddr=('127.0.0.1', 5)>",
            "<socket.socket fd=FD, family=2, type=1, proto=6, laddr=('127.0.0.1', PORT)>",
        ),
        # times
        ("connect() took 0.532 ms", "connect() took TIME"),
        ("17.3 µs and 17.3 μs", "TIME and TIME"),
        ("12 us, 1.05 s, 250 ns, 3ms", "TIME, TIME, TIME, TIME"),
        (
            "   3.770 ms  listener   server  listen(128) called",
            "   TIME  listener   server  listen(128) called",
        ),
        ("retries after 1.2e-05 s", "retries after TIME"),
        # left alone
        (
            "listen(1) with backlog 1: 2 sockets, 10 segments, 3 states, queue 1/128",
            "listen(1) with backlog 1: 2 sockets, 10 segments, 3 states, queue 1/128",
        ),
        ("flags 0x12 SYN+ACK; seq=0 ack=1 relative", "flags 0x12 SYN+ACK; seq=0 ack=1 relative"),
        ("<Figure size 950x310 with 1 Axes>", "<Figure size 950x310 with 1 Axes>"),
        ("RFC 9293, TIME_WAIT, FIN_WAIT2", "RFC 9293, TIME_WAIT, FIN_WAIT2"),
        # addresses, inodes, sequence numbers
        ("<object at 0x7f3a2c1b4e50>", "<object at 0xADDRESS>"),
        ("inode 123456 and inode=99", "inode INODE and inode=INODE"),
        ("SYN seq=3141592653 ack=2718281828", "SYN seq=NUMBER ack=NUMBER"),
    ],
)
def test_sanitize_cfg_replacements(raw, clean):
    assert sanitize(raw) == clean
