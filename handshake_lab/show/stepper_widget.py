"""The stepper in JupyterLab: a button per socket call, the kernel's table, the timeline.

One class owns the Stepper and its widgets and has one render method, as ipywidgets' own
examples do. Rules: ipywidgets and matplotlib are imported only when a widget is made;
callbacks never write through `with out:` (under nbval that leaks into cell output);
a blocked call finishing in its worker thread re-renders through the same render();
buttons are made once per call label and only closed by close(), so a click already on
its way (a double click) never meets a closed comm; close() is idempotent and frees every
socket and thread.

Page structure the browser test relies on: the widget has CSS class `hl-stepper`; inside
`hl-step-buttons` one button per step of the scenario, in its order, enabled only while
the call is offered; a Checkbox labelled "Free order" (switching it resets the scenario);
the state table is an HTML widget with class `hl-socket-table` whose rows carry data-lane,
data-state (Linux name) and data-accepted; the timeline is an Image with class
`hl-timeline`; the explanation (one row per kernel action) an HTML widget with class
`hl-explanation`.
"""

from __future__ import annotations

import html
import threading
import time

from .. import platforms
from ..kernel.lookup import absent_words
from ..model.states import TcpState
from ..stepper.engine import Snapshot, Stepper
from ..stepper.scenarios import scenario_named, scenarios_here
from .timeline_plot import timeline_png

#: Seconds with nothing happening after which the timeline cuts the pause short (its length
#: written on the cut): a learner reading, or a SYN retry's wait, never squeezes the steps.
#: The kernel's own short waits (a delayed ACK, FIN-WAIT-1) stay drawn to scale.
IDLE_GAP = 0.2

#: Table cells never wrap ("server 1" on one line, "SYN-RECEIVED" in one piece).
_CELL = "style='white-space:nowrap;padding:2px 12px 2px 0;vertical-align:top;text-align:left'"


def socket_table_html(snapshot: Snapshot) -> str:
    """The kernel's view of the lab's sockets as an HTML table (pure: snapshot in, text out).

    One word per state, the RFC's; Linux's name (as ss prints it) is the cell's tooltip and
    the row's data-state. The accept queue is said in words in the caption."""
    rows = []
    counted = dict(snapshot.segments)
    for view in snapshot.sockets:
        state = view.state.linux_name if view.state else "none"
        during = str(counted[view.lane]) if view.lane in counted else ""
        if view.state is None:
            shown = f"<i>{html.escape(absent_words())}</i>"
        else:
            shown = (
                f"<span title='Linux: {view.state.linux_name}'>"
                f"{html.escape(view.state.rfc_name)}</span>"
            )
        note = "" if view.queue is not None else view.status  # the queue is in the caption
        rows.append(
            f'<tr data-lane="{html.escape(view.lane)}" data-state="{state}" '
            f'data-accepted="{"yes" if view.accepted else "no"}">'
            f"<td {_CELL}><b>{html.escape(view.lane)}</b></td><td {_CELL}>{shown}</td>"
            f"<td {_CELL}>{html.escape(during)}</td><td {_CELL}>{html.escape(note)}</td></tr>"
        )
    if snapshot.accept_queue is not None:
        caption = f"accept queue: {html.escape(snapshot.queue_text())}"
    elif snapshot.state_of("listener") is TcpState.LISTEN:
        where = html.escape(platforms.name())
        caption = f"accept queue: Linux shows it (TCP_INFO); {where} does not"
    else:
        caption = "no listening socket"
    heads = ("socket", "kernel state", "segments this step (TCP_INFO)", "note")
    return (
        "<table style='border-collapse:collapse'>"
        f"<caption style='text-align:left;white-space:nowrap'>{caption}</caption><tr>"
        + "".join(f"<th {_CELL}>{head}</th>" for head in heads)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def explanation_html(snapshot: Snapshot) -> str:
    """The step, what it returned, then one row per kernel action: whose socket, what its
    kernel did, the state change (pure: snapshot in, text out)."""
    head = f"<p><b>{html.escape(snapshot.step or 'Ready')}</b> → {html.escape(snapshot.result)}</p>"
    rows = "".join(
        f"<tr><td {_CELL}><b>{html.escape(action.who)}</b></td>"
        f"<td style='padding:2px 12px 2px 0'>{html.escape(action.did)}</td>"
        f"<td {_CELL}>{html.escape(action.change)}</td></tr>"
        for action in snapshot.actions
    )
    table = (
        "<table style='border-collapse:collapse'><tr>"
        f"<th {_CELL}>whose kernel</th><th {_CELL}>did</th><th {_CELL}>state</th></tr>"
        f"{rows}</table>"
        if rows
        else ""
    )
    note = f"<p>{html.escape(snapshot.note)}</p>" if snapshot.note else ""
    return head + table + note


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


#: A second click on the same call within this time after its step ended is the rest of a
#: double click (the browser sent it before it saw the result), not a new request. Only a
#: call offered again (a refused connect()) can be clicked twice: the others are disabled.
DOUBLE_CLICK = 0.5

_MODES = (
    "<i>Free order off: only the scenario's next call is offered. On: every call the sockets "
    "allow now, in any order. Switching it starts the scenario again.</i>"
)


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
        # One button per call label, made once and kept until close(): a click already on
        # its way from the browser always finds its button (no "Comm not found"). Every
        # step of the scenario has its button in a fixed place, enabled only while offered,
        # so the second click of a double click lands on a disabled button, never on the
        # next call.
        self._call_buttons: dict[str, widgets.Button] = {}
        self._last_done: dict[str, float] = {}
        self.stepper = Stepper(scenario, in_order=in_order, on_change=self._on_background_change)
        self._scenario = widgets.Dropdown(
            options=[(s.title, key) for key, s in scenarios_here().items()],
            value=scenario,
            description="Scenario:",
            style={"description_width": "initial"},
        )
        self._scenario.observe(self._on_scenario, names="value")
        self._reset = widgets.Button(
            description="Reset", icon="undo", tooltip="close every socket and start again"
        )
        self._reset.on_click(lambda _button: self.reset())
        self.free_order = widgets.Checkbox(
            value=not in_order,
            description="Free order",
            indent=False,
            layout=widgets.Layout(width="auto", margin="0 0 0 16px"),
        )
        self.free_order.observe(self._on_free_order, names="value")
        # The parts a test or a teacher may read: the step buttons, the socket table and the
        # timeline image, each as the kernel last showed it.
        self.buttons = widgets.HBox([], layout=widgets.Layout(flex_flow="row wrap"))
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
                widgets.HBox([self._scenario, self._reset, self.free_order]),
                widgets.HTML(_MODES),
                self.buttons,
                self._status,
                self.table,
                self._explanation,
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

    def reset(self, scenario: str | None = None, *, in_order: bool | None = None) -> Snapshot:
        self.stepper.reset(scenario, in_order=in_order)
        self._last_done.clear()  # a fresh scenario: no click of it can be a double click yet
        self.render()
        return self.snapshot

    def wait(self, timeout: float | None = None) -> Snapshot:
        """Wait until no call is blocked (bounded), then show the result."""
        self.stepper.wait(*([timeout] if timeout is not None else []))
        self.render()
        return self.snapshot

    def _on_scenario(self, change) -> None:
        self.reset(change["new"])

    def _on_free_order(self, change) -> None:
        self.reset(in_order=not change["new"])

    def _on_button(self, button) -> None:
        """A click from the browser. Clicks sent before the browser saw the last step's
        result (a double click) are dropped quietly: their call is no longer offered, or
        was taken again a moment ago."""
        label = button.description
        if self._closed or self.stepper.closed:
            return
        if label not in (step.label for step in self.stepper.available()):
            return
        if time.monotonic() - self._last_done.get(label, -DOUBLE_CLICK) < DOUBLE_CLICK:
            return
        self.click(label)
        self._last_done[label] = time.monotonic()

    def _on_background_change(self, _snapshot: Snapshot) -> None:
        self.render()  # takes a fresh snapshot: a click may have come in between

    def _button(self, label: str):
        if label not in self._call_buttons:
            button = self._widgets.Button(
                description=label,
                layout=self._widgets.Layout(width="auto"),
                button_style="primary",
            )
            button.on_click(self._on_button)
            self._call_buttons[label] = button
        return self._call_buttons[label]

    def _show_buttons(self, snapshot: Snapshot) -> None:
        offered, pending = set(snapshot.next_steps), set(snapshot.pending)
        buttons = []
        for step in scenario_named(snapshot.scenario).steps:
            button = self._button(step.label)
            if step.label in offered:
                button.disabled, button.button_style, button.icon = False, "primary", ""
                button.tooltip = "make this call now"
            elif step.label in pending:
                button.disabled, button.button_style, button.icon = True, "warning", "hourglass"
                button.tooltip = "blocked: see below for what will end the wait"
            elif step.label in snapshot.taken:
                button.disabled, button.button_style, button.icon = True, "", "check"
                button.tooltip = "done"
            else:
                button.disabled, button.button_style, button.icon = True, "", ""
                button.tooltip = "not possible yet"
            buttons.append(button)
        if tuple(buttons) != self.buttons.children:
            self.buttons.children = tuple(buttons)

    @property
    def offered(self) -> list:
        """The enabled call buttons, in the scenario's order (what a learner can click)."""
        return [button for button in self.buttons.children if not button.disabled]

    # -- one render method ----------------------------------------------------------------
    def render(self) -> None:
        """Show the current snapshot: buttons for the next calls, the table, the timeline."""
        if self._closed:
            return
        with self._render_lock:
            if self.stepper.closed:
                return
            snapshot = self.snapshot = self.stepper.snapshot()
            self._show_buttons(snapshot)
            self._status.value = self._status_html(snapshot, self.stepper.in_order)
            self.table.value = socket_table_html(snapshot)
            self._explanation.value = explanation_html(snapshot) + packets_html(
                snapshot, self.stepper.packets_note
            )
            self.timeline.value = timeline_png(
                self.stepper.recording,
                title=f"{scenario_named(snapshot.scenario).title}: kernel states and calls",
                compress_idle_over=IDLE_GAP,
            )

    @staticmethod
    def _status_html(snapshot: Snapshot, in_order: bool) -> str:
        mode = "in order" if in_order else "free order"
        if snapshot.pending:
            waiting = "<br>".join(html.escape(text) for text in snapshot.waiting)
            return f"<i>Blocked in a worker thread ({mode}).</i><br>{waiting}"
        if snapshot.finished:
            return "<i>Scenario finished: pick another one or press Reset.</i>"
        if not snapshot.next_steps:
            return "<i>Nothing can be done until a blocked call finishes.</i>"
        return f"<i>Click the next socket call ({mode}).</i>"

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Free the sockets and threads and close the widgets (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.stepper.close()
        with self._render_lock:  # a background render finishes before its widgets go
            for button in self._call_buttons.values():
                button.close()
            self.widget.close()

    def __enter__(self) -> StepperWidget:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (
            f"StepperWidget: {scenario_named(self.snapshot.scenario).title}, "
            f"{len(self.snapshot.next_steps)} call(s) offered"
        )
        return bundle
