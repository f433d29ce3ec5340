"""Widget playgrounds for the lectures: one figure, drawn once, updated in place when a control moves.

``ipywidgets.interact`` with ``plt.show()`` builds a new figure on every change and clears and refills an
output area; under quick input (a few arrow presses on a slider, then a checkbox) the clear and the new
figure race, and a student sees two stacked figures, a blank one, or a traceback, and waits seconds per
redraw. A :class:`Playground` instead owns one matplotlib :class:`~matplotlib.figure.Figure` (not a pyplot
figure, so nothing else ever displays it) and one image widget showing it. Moving a control calls
``draw(fig, **values)``, which should update the figure's artists in place (``line.set_data``,
``ax.set_title``...) after building them on the first call, and the image is replaced by the new rendering:
there is never more than one figure, and a redraw costs one render (tens of milliseconds) plus whatever
``draw`` computes. Changes that arrive while a redraw is pending are coalesced into one redraw of the latest
values. :class:`TextPlayground` is the same for a function that returns text.

Usage::

    def draw(fig, lr, steps):
        if not fig.axes:                       # first call: build the axes and the artists
            ax = fig.subplots()
            ax.plot([], [], label="path")
        (line,) = fig.axes[0].get_lines()
        line.set_data(...)                     # later calls (and the first): update in place

    course.widgets.Playground(draw, {"lr": widgets.FloatSlider(...), "steps": 50}, figsize=(7, 4))

Values in ``controls`` that are not widgets are passed to ``draw`` unchanged.

Introduced in lecture 01 (Tensors) and used by every lecture's playground.
"""

from __future__ import annotations

import asyncio
import html
import io
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PathCache", "Playground", "TextPlayground"]


def _is_widget(value: Any) -> bool:
    from ipywidgets import ValueWidget

    return isinstance(value, ValueWidget)


class _Controls:
    """Controls, a status line, change handling with coalescing; subclasses render the result."""

    def __init__(self, controls: Mapping[str, Any], *, debounce: float) -> None:
        import ipywidgets as widgets

        if not isinstance(controls, Mapping) or not controls:
            raise TypeError("controls must be a non-empty dict {parameter name: widget or fixed value}")
        if debounce < 0:
            raise ValueError(f"debounce must be >= 0 seconds, got {debounce}")
        self.controls = dict(controls)
        self.debounce = float(debounce)
        self.status = widgets.HTML(value="", layout=widgets.Layout(min_height="1.5em"))
        self.redraws = 0                   # how many times the function ran (tests and benchmarks read it)
        self.last_seconds: float | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._drawn_values: dict[str, Any] | None = None
        for control in self.controls.values():
            if _is_widget(control):
                control.observe(self._changed, names="value")

    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control (fixed values as given)."""
        return {name: c.value if _is_widget(c) else c for name, c in self.controls.items()}

    def _control_box(self):
        import ipywidgets as widgets

        shown = [c for c in self.controls.values() if _is_widget(c)]
        return widgets.HBox(shown, layout=widgets.Layout(flex_flow="row wrap"))

    def _changed(self, change: Any = None) -> None:
        # Quick input (five arrow presses) sends five changes. With a running event loop (a live kernel)
        # a redraw waits `debounce` seconds and restarts the wait on every change, so a burst costs one
        # redraw of the latest values; without one (a script, a test) it redraws at once.
        if self.debounce > 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                if self._pending is not None:
                    self._pending.cancel()
                self._pending = loop.call_later(self.debounce, self._pending_redraw)
                return
        self.redraw()

    def _pending_redraw(self) -> None:
        self._pending = None
        self.redraw()

    def redraw(self, force: bool = False) -> None:
        """Run the function with the current values and show the result (nothing if they are unchanged)."""
        values = self.values
        if not force and values == self._drawn_values:
            return
        start = time.perf_counter()
        try:
            self._render(values)
        except Exception as err:  # noqa: BLE001 - a bad value must not leave a traceback in the notebook
            self.status.value = (f'<span style="color:#b00020">could not draw with {html.escape(repr(values))}: '
                                 f"{html.escape(type(err).__name__)}: {html.escape(str(err))}</span>")
            self._drawn_values = None
        else:
            self.status.value = ""
            self._drawn_values = values
        self.redraws += 1
        self.last_seconds = time.perf_counter() - start

    def _render(self, values: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


class Playground(_Controls):
    """A figure drawn by ``draw(fig, **values)`` and redrawn in place whenever a control changes.

    ``controls`` maps ``draw``'s parameter names to ipywidgets (their ``value`` is passed) or to fixed
    values. The figure is created once (``figsize`` in inches, ``dpi``) and drawn immediately. ``draw``
    gets the same figure every time: build the axes and artists when ``fig.axes`` is empty, update them
    afterwards. An exception in ``draw`` is shown as one red line under the controls and the last good
    figure stays. Display the playground by making it the last expression of a cell (or ``display(p)``).
    """

    def __init__(
        self,
        draw: Callable[..., Any],
        controls: Mapping[str, Any],
        *,
        figsize: tuple[float, float] = (7.0, 4.0),
        dpi: int = 90,
        debounce: float = 0.05,
    ) -> None:
        import ipywidgets as widgets
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if not callable(draw):
            raise TypeError(f"draw must be a function draw(fig, **values), got {type(draw).__name__}")
        self.draw = draw
        self.figure = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(self.figure)
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.image.add_class("course-playground-figure")
        super().__init__(controls, debounce=debounce)
        self.widget = widgets.VBox([self._control_box(), self.status, self.image])
        self.widget.add_class("course-playground")
        self.redraw(force=True)

    def _render(self, values: dict[str, Any]) -> None:
        self.draw(self.figure, **values)
        buffer = io.BytesIO()
        self.figure.canvas.print_png(buffer)
        self.image.value = buffer.getvalue()


class TextPlayground(_Controls):
    """Text from ``function(**values)``, shown in place (monospaced) and replaced whenever a control changes."""

    def __init__(self, function: Callable[..., Any], controls: Mapping[str, Any], *, debounce: float = 0.05) -> None:
        import ipywidgets as widgets

        if not callable(function):
            raise TypeError(f"function must be callable, got {type(function).__name__}")
        self.function = function
        self.text = widgets.HTML(value="")
        self.text.add_class("course-playground-text")
        super().__init__(controls, debounce=debounce)
        self.widget = widgets.VBox([self._control_box(), self.status, self.text])
        self.widget.add_class("course-playground")
        self.redraw(force=True)

    def _render(self, values: dict[str, Any]) -> None:
        self.text.value = f"<pre style='margin:0'>{html.escape(str(self.function(**values)))}</pre>"


class PathCache:
    """Remember computed paths (arrays of shape ``(steps + 1, ...)``) so that a playground computes each once.

    ``get(key, steps, compute)`` returns ``compute(steps)[: steps + 1]`` the first time a ``key`` (any hashable
    description of the setting, e.g. ``("ravine", lr, mu)``) is asked for, and a slice of the stored path
    afterwards whenever at most as many steps are wanted: moving a *steps* slider costs nothing, and
    returning to an earlier setting costs nothing. At most ``maxsize`` keys are kept (oldest dropped first).
    """

    def __init__(self, maxsize: int = 256) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._paths: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self._paths)

    def get(self, key: Any, steps: int, compute: Callable[[int], Any]) -> Any:
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        path = self._paths.pop(key, None)
        if path is None or len(path) < steps + 1:
            path = compute(steps)
            if len(path) < steps + 1:
                raise ValueError(f"compute({steps}) returned {len(path)} points, expected {steps + 1}")
        self._paths[key] = path                     # most recently used last
        while len(self._paths) > self.maxsize:
            del self._paths[next(iter(self._paths))]
        return path[: steps + 1]
