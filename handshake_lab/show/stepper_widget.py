"""The stepper in JupyterLab: a button per next socket call, the kernel's table, the timeline.

One class owns the Stepper and its widgets and has one render method, as ipywidgets' own
examples do. Rules: ipywidgets and matplotlib are imported only when a widget is made;
callbacks never write through `with out:` (under nbval that leaks into cell output);
a blocked call finishing in its worker thread re-renders through the same render();
close() is idempotent and frees every socket and thread.

Page structure the browser test relies on: the widget has CSS class `hl-stepper`; the
state table is an HTML widget with class `hl-socket-table` whose rows carry
data-lane, data-state (Linux name) and data-accepted; the timeline is an Image with
class `hl-timeline`; the explanation an HTML widget with class `hl-explanation`.
"""

from __future__ import annotations

import html
import threading

from ..stepper.engine import Snapshot, Stepper
from ..stepper.scenarios import SCENARIOS
from .timeline_plot import timeline_png


def socket_table_html(snapshot: Snapshot) -> str:
    """The kernel's view of the lab's sockets as an HTML table (pure: snapshot in, text out)."""
    rows = []
    counted = dict(snapshot.segments)
    for view in snapshot.sockets:
        state = view.state.linux_name if view.state else "none"
        during = str(counted[view.lane]) if view.lane in counted else ""
        if view.state is None:
            shown = "<i>not in the kernel</i>"
        else:
            shown = html.escape(view.state.display_name)
        rows.append(
            f'<tr data-lane="{html.escape(view.lane)}" data-state="{state}" '
            f'data-accepted="{"yes" if view.accepted else "no"}">'
            f"<td><b>{html.escape(view.lane)}</b></td><td>{shown}</td>"
            f"<td>{html.escape(during)}</td><td>{html.escape(view.status)}</td></tr>"
        )
    queue = snapshot.accept_queue
    caption = (
        f"accept queue: {queue.length} waiting (holds up to {queue.maximum + 1})"
        if queue is not None
        else "no listening socket"
    )
    return (
        "<table><caption style='text-align:left'>" + caption + "</caption>"
        "<tr><th>socket</th><th>kernel state</th><th>segments this step (TCP_INFO)</th>"
        "<th>note</th></tr>" + "".join(rows) + "</table>"
    )


def packets_html(snapshot: Snapshot, note: str) -> str:
    """The segments the step put on the wire, as captured (pure: snapshot in, text out)."""
    if note:
        return f"<p><i>{html.escape(note)}</i></p>"
    if not snapshot.packets:
        return "<p>Captured on the wire: nothing.</p>" if snapshot.step else ""
    items = "".join(
        f"<li><code>{p.src_port} → {p.dst_port} {html.escape(p.flags)} seq={p.seq}"
        + (f" ack={p.ack}" if "ACK" in p.flags else "")
        + "</code></li>"
        for p in snapshot.packets
    )
    return f"<p>Captured on the wire (live):</p><ul>{items}</ul>"


class StepperWidget:
    """Step through a scenario one real socket call per click; see the module docstring."""

    _shown: dict[str, StepperWidget] = {}

    @classmethod
    def show(
        cls, scenario: str = "basic", *, key: str = "default", in_order: bool = True
    ) -> StepperWidget:
        """A new widget that replaces (closes) the one shown before under the same key, so
        re-running a notebook cell never piles up sockets and threads."""
        previous = cls._shown.pop(key, None)
        if previous is not None:
            previous.close()
        widget = cls._shown[key] = cls(scenario, in_order=in_order)
        return widget

    def __init__(self, scenario: str = "basic", *, in_order: bool = True) -> None:
        import ipywidgets as widgets

        self._widgets = widgets
        self._render_lock = threading.Lock()
        self._closed = False
        self.stepper = Stepper(scenario, in_order=in_order, on_change=self._on_background_change)
        self._scenario = widgets.Dropdown(
            options=[(s.title, key) for key, s in SCENARIOS.items()],
            value=scenario,
            description="Scenario:",
            style={"description_width": "initial"},
        )
        self._scenario.observe(self._on_scenario, names="value")
        self._reset = widgets.Button(
            description="Reset", icon="undo", tooltip="close every socket and start again"
        )
        self._reset.on_click(lambda _button: self.reset())
        # The parts a test or a teacher may read: the step buttons, the socket table and the
        # timeline image, each as the kernel last showed it.
        self.buttons = widgets.HBox([])
        self.buttons.add_class("hl-step-buttons")
        self._status = widgets.HTML()
        self.table = widgets.HTML()
        self.table.add_class("hl-socket-table")
        self._explanation = widgets.HTML()
        self._explanation.add_class("hl-explanation")
        self.timeline = widgets.Image(format="png", layout=widgets.Layout(max_width="760px"))
        self.timeline.add_class("hl-timeline")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self._scenario, self._reset]),
                self.buttons,
                self._status,
                widgets.HBox([self.table, self._explanation]),
                self.timeline,
            ]
        )
        self.widget.add_class("hl-stepper")
        self.snapshot: Snapshot | None = None
        self.render()

    # -- actions (what a click does; also callable from code and tests) ---------------------
    def click(self, label: str | None = None) -> Snapshot:
        """Take the step called `label` (the first offered when None), as its button does."""
        self.stepper.step(label)
        self.render()
        return self.snapshot

    def reset(self, scenario: str | None = None) -> Snapshot:
        self.stepper.reset(scenario)
        self.render()
        return self.snapshot

    def wait(self, timeout: float | None = None) -> Snapshot:
        """Wait until no call is blocked (bounded), then show the result."""
        self.stepper.wait(*([timeout] if timeout is not None else []))
        self.render()
        return self.snapshot

    def _on_scenario(self, change) -> None:
        self.reset(change["new"])

    def _on_button(self, button) -> None:
        self.click(button.description)

    def _on_background_change(self, _snapshot: Snapshot) -> None:
        self.render()  # takes a fresh snapshot: a click may have come in between

    # -- one render method ----------------------------------------------------------------
    def render(self) -> None:
        """Show the current snapshot: buttons for the next calls, the table, the timeline."""
        if self._closed:
            return
        with self._render_lock:
            if self.stepper._closed:
                return
            snapshot = self.snapshot = self.stepper.snapshot()
            buttons = []
            for label in snapshot.next_steps:
                button = self._widgets.Button(
                    description=label,
                    layout=self._widgets.Layout(width="auto"),
                    button_style="primary",
                )
                button.on_click(self._on_button)
                buttons.append(button)
            old = self.buttons.children
            self.buttons.children = buttons
            for button in old:
                button.close()
            self._status.value = self._status_html(snapshot)
            self.table.value = socket_table_html(snapshot)
            self._explanation.value = (
                f"<p><b>{html.escape(snapshot.step or 'Ready')}</b> → "
                f"{html.escape(snapshot.result)}</p><p>{html.escape(snapshot.explanation)}</p>"
                + packets_html(snapshot, self.stepper.packets_note)
            )
            self.timeline.value = timeline_png(
                self.stepper.recording,
                title=f"{SCENARIOS[snapshot.scenario].title}: kernel states and calls",
            )

    @staticmethod
    def _status_html(snapshot: Snapshot) -> str:
        if snapshot.pending:
            waiting = ", ".join(snapshot.pending)
            return (
                f"<i>Blocked in a worker thread: {html.escape(waiting)}. It finishes by "
                "itself when the kernel is ready.</i>"
            )
        if snapshot.finished:
            return "<i>Scenario finished: pick another one or press Reset.</i>"
        if not snapshot.next_steps:
            return "<i>Nothing can be done until a blocked call finishes.</i>"
        return "<i>Click the next socket call.</i>"

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Free the sockets and threads and close the widgets (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.stepper.close()
        for button in self.buttons.children:
            button.close()
        self.widget.close()

    def __enter__(self) -> StepperWidget:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (
            f"StepperWidget: {SCENARIOS[self.snapshot.scenario].title}, "
            f"{len(self.snapshot.next_steps)} call(s) offered"
        )
        return bundle
