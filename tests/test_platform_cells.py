"""%%linux_only and %%not_linux: a notebook cell runs, or says in one sentence why not."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from handshake_lab import platforms


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext handshake_lab", store_history=False)
    yield shell
    InteractiveShell.clear_instance()


def run(shell, source: str):
    result = shell.run_cell(source, store_history=False)
    return result


def test_on_linux_a_linux_only_cell_runs_as_a_cell_and_shows_its_last_value(
    shell, monkeypatch, capsys
):
    monkeypatch.delenv(platforms.SWITCH, raising=False)
    result = run(shell, "%%linux_only the answer\nlinux_value = 40\nlinux_value + 2")
    assert result.success and result.result == 42
    assert shell.user_ns["linux_value"] == 40
    assert "skipped" not in capsys.readouterr().out
    result = run(shell, "%%not_linux the other evidence\nnot_linux_value = 1")
    assert result.success and "not_linux_value" not in shell.user_ns


@pytest.mark.parametrize("simulated", ["darwin", "windows"])
def test_elsewhere_it_says_what_linux_shows_and_runs_nothing(shell, monkeypatch, capsys, simulated):
    monkeypatch.setenv(platforms.SWITCH, simulated)
    result = run(shell, "%%linux_only the accept queue (TCP_INFO)\nskipped_value = 1\n1 / 0")
    assert result.success and result.result is None
    assert "skipped_value" not in shell.user_ns
    name = platforms.name()
    assert capsys.readouterr().out == (
        f"Linux only: this cell shows the accept queue (TCP_INFO).\nIt is skipped on {name}.\n"
    )
    result = run(shell, "%%not_linux the other evidence\nelsewhere_value = 2\nelsewhere_value")
    assert result.success and result.result == 2


def test_a_long_skip_sentence_is_wrapped_between_words(monkeypatch):
    from handshake_lab.show.platform_cells import skip_sentence

    monkeypatch.setenv(platforms.SWITCH, "darwin")
    shows = "a full queue: client 3 in SYN-SENT, its SYN resent on this kernel's schedule"
    lines = skip_sentence(shows).split("\n")
    assert len(lines) == 3 and max(map(len, lines)) <= 88, lines
    assert " ".join(lines[:2]) == f"Linux only: this cell shows {shows}."
    assert lines[2] == "It is skipped on macOS (simulated on Linux)."


def test_an_error_in_a_linux_only_cell_fails_the_cell(shell, monkeypatch):
    monkeypatch.delenv(platforms.SWITCH, raising=False)
    result = run(shell, "%%linux_only a failing cell\nraise KeyError('from the cell')")
    assert not result.success and isinstance(result.error_in_exec, KeyError)


def test_a_linux_only_cell_must_say_what_it_shows(shell):
    result = run(shell, "%%linux_only\npass")
    assert not result.success
    assert "needs the words after it" in str(result.error_in_exec)


def test_magics_inside_the_cell_still_work(shell, monkeypatch):
    monkeypatch.delenv(platforms.SWITCH, raising=False)
    result = run(shell, "%%linux_only a line magic inside\nmagic_value = %time 6 * 7\nmagic_value")
    assert result.success and result.result == 42
