"""The notebooks' cell magics for what only some platforms can show: `%%linux_only`, `%%not_linux`.

`%load_ext handshake_lab` (each notebook's first cell) registers them. A cell that starts with

    %%linux_only the server's end in the kernel's table before accept() (/proc/net/tcp)

runs as plain Python on Linux, with its last expression shown as usual. Elsewhere (macOS,
Windows, or HANDSHAKE_LAB_PLATFORM simulating them, see `platforms`) it is not run: it prints
one sentence saying what it shows on Linux and that it is skipped here, so Run All goes on to
the end with no error. A cell that starts with `%%not_linux` is the other half: the next best
real evidence, run only where the Linux cell was skipped (on Linux it prints nothing).
Rules: the words after `%%linux_only` are required (what the learner would see on Linux);
a skipped cell defines nothing, so every cell that uses its names is marked too.
"""

from __future__ import annotations

import ast

from .. import platforms

#: The words every skipped cell prints, which CI looks for when it runs the simulations.
SKIPPED = "It is skipped on"


#: JupyterLab breaks a long output line anywhere, even inside a word: lines stay this short.
_WIDTH = 88


def skip_sentence(shows: str) -> str:
    """What a `%%linux_only` cell prints where it is not run: what it shows, wrapped between
    words, then on a line of its own where it is skipped."""
    import textwrap

    what = textwrap.fill(f"Linux only: this cell shows {shows}.", _WIDTH)
    return f"{what}\n{SKIPPED} {platforms.name()}."


def _run(shell, cell: str):
    """Run `cell` in the notebook's namespace, like a cell of its own: the value of a last
    expression is returned, for IPython to show as the cell's result."""
    tree = ast.parse(shell.transform_cell(cell), filename="<cell>")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    namespace = shell.user_ns
    exec(compile(tree, "<cell>", "exec"), namespace)  # the learner's own cell
    if last is not None:
        return eval(compile(last, "<cell>", "eval"), namespace)
    return None


def linux_only(shell, line: str, cell: str):
    """`%%linux_only WHAT`: run the cell on Linux; elsewhere say what it shows and skip it."""
    shows = line.strip()
    if not shows:
        raise ValueError(
            "%%linux_only needs the words after it: what the cell shows on Linux, e.g. "
            "%%linux_only the server's end before accept() (/proc/net/tcp)"
        )
    if platforms.is_linux():
        return _run(shell, cell)
    print(skip_sentence(shows))
    return None


def not_linux(shell, line: str, cell: str):
    """`%%not_linux [what it shows instead]`: run the cell only where Linux-only cells are
    skipped; the words after it are for the reader."""
    if platforms.is_linux():
        return None
    return _run(shell, cell)


def register(shell) -> None:
    """Register both cell magics with an IPython shell."""
    shell.register_magic_function(
        lambda line, cell: linux_only(shell, line, cell), "cell", "linux_only"
    )
    shell.register_magic_function(
        lambda line, cell: not_linux(shell, line, cell), "cell", "not_linux"
    )
