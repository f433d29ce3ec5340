"""course.widgets: one figure per playground, updated in place; quick input coalesced; errors shown, not raised.

The last test executes a notebook that trains with progress bars (as a lecture does), saves it, and checks that
every widget view in the saved outputs has its model in the saved widget state (JupyterLab shows "Error displaying
widget: model not found" for the others when the notebook is reopened).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pytest

from course.widgets import PathCache, Playground, TextPlayground

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def _line_playground(**kwargs):
    calls = []

    def draw(fig, slope, flip):
        calls.append((slope, flip))
        if not fig.axes:
            ax = fig.subplots()
            ax.plot([], [])
            ax.set_xlim(0, 1)
            ax.set_ylim(-3, 3)
        line = fig.axes[0].get_lines()[0]
        x = np.linspace(0, 1, 20)
        line.set_data(x, (-1 if flip else 1) * slope * x)
        fig.axes[0].set_title(f"slope {slope}")

    slider = widgets.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.5, continuous_update=False)
    box = widgets.Checkbox(value=False)
    return Playground(draw, {"slope": slider, "flip": box}, **kwargs), slider, box, calls


def test_playground_draws_once_at_start_and_updates_the_same_figure():
    playground, slider, box, calls = _line_playground(figsize=(4, 3), dpi=50)
    assert calls == [(1.0, False)] and playground.redraws == 1
    first_image = bytes(playground.image.value)
    assert first_image.startswith(PNG)
    figure, axes = playground.figure, playground.figure.axes[0]
    slider.value = 2.5                     # no running event loop here: drawn at once
    box.value = True
    assert calls == [(1.0, False), (2.5, False), (2.5, True)]
    assert playground.figure is figure and playground.figure.axes == [axes]   # the same figure and axes
    assert len(axes.get_lines()) == 1 and axes.get_title() == "slope 2.5"
    assert bytes(playground.image.value).startswith(PNG) and bytes(playground.image.value) != first_image
    assert np.allclose(axes.get_lines()[0].get_ydata()[-1], -2.5)
    assert playground.last_seconds is not None and playground.status.value == ""


def test_playground_is_not_a_pyplot_figure_and_displays_as_one_widget():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    playground, *_ = _line_playground()
    assert plt.get_fignums() == before     # the inline backend never shows a second copy
    bundle = playground._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == playground.widget.model_id
    children = playground.widget.children
    assert playground.image in children and sum(isinstance(c, widgets.Image) for c in children) == 1


def test_unchanged_values_do_not_redraw():
    playground, slider, _, calls = _line_playground()
    playground.redraw()
    slider.value = 1.0                     # the same value: no change event, no redraw
    assert len(calls) == 1
    playground.redraw(force=True)
    assert len(calls) == 2


def test_an_error_in_draw_is_one_status_line_and_the_last_figure_stays():
    def draw(fig, n):
        if n < 0:
            raise ValueError("n must be >= 0")
        if not fig.axes:
            fig.subplots().plot([0, 1], [0, 1])

    slider = widgets.IntSlider(value=1, min=-2, max=2)
    playground = Playground(draw, {"n": slider})
    good = bytes(playground.image.value)
    slider.value = -1
    assert "ValueError: n must be &gt;= 0" in playground.status.value and "color" in playground.status.value
    assert bytes(playground.image.value) == good
    slider.value = 2
    assert playground.status.value == ""


def test_quick_changes_with_an_event_loop_are_drawn_once_with_the_latest_values():
    async def burst():
        playground, slider, box, calls = _line_playground(debounce=0.05)
        for value in (1.5, 2.0, 2.5, 3.0):
            slider.value = value
        box.value = True
        assert len(calls) == 1             # nothing drawn yet: the burst is still arriving
        await asyncio.sleep(0.2)
        return calls

    calls = asyncio.run(burst())
    assert calls == [(1.0, False), (3.0, True)]


def test_fixed_values_are_passed_through_and_bad_arguments_are_refused():
    seen = []
    Playground(lambda fig, a, b: seen.append((a, b)), {"a": widgets.IntSlider(value=3), "b": "fixed"})
    assert seen == [(3, "fixed")]
    with pytest.raises(TypeError, match="draw must be a function"):
        Playground("not callable", {"a": 1})
    with pytest.raises(TypeError, match="non-empty dict"):
        Playground(lambda fig: None, {})
    with pytest.raises(ValueError, match="debounce"):
        Playground(lambda fig, a: None, {"a": 1}, debounce=-1)


def test_text_playground_replaces_its_text():
    box = widgets.Text(value="a<b")
    playground = TextPlayground(lambda s: f"got {s}", {"s": box})
    assert playground.text.value == "<pre style='margin:0'>got a&lt;b</pre>"
    box.value = "xyz"
    assert "got xyz" in playground.text.value and playground.redraws == 2


def test_path_cache_computes_once_and_slices():
    computed = []

    def compute(steps):
        computed.append(steps)
        return np.arange(steps + 1)

    cache = PathCache(maxsize=2)
    assert list(cache.get("a", 5, compute)) == list(range(6))
    assert list(cache.get("a", 3, compute)) == list(range(4)) and computed == [5]   # a slice, not a new run
    assert len(cache.get("a", 8, compute)) == 9 and computed == [5, 8]
    cache.get("b", 1, compute)
    cache.get("c", 1, compute)             # "a" is the oldest: dropped
    assert len(cache) == 2
    cache.get("a", 1, compute)
    assert computed == [5, 8, 1, 1, 1]
    with pytest.raises(ValueError, match="returned 2 points"):
        cache.get("d", 5, lambda steps: np.arange(2))
    with pytest.raises(ValueError, match="steps must be >= 0"):
        cache.get("a", -1, compute)
    with pytest.raises(ValueError, match="maxsize"):
        PathCache(0)


def _widget_views_without_state(nb) -> tuple[int, list[str]]:
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    views = [o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
             for cell in nb.cells for o in cell.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    return len(views), [v for v in views if v not in state]


@pytest.mark.slow
def test_a_saved_notebook_has_no_widget_view_without_its_model(tmp_path):
    """Training with progress bars, a playground, saved as nbclient saves it: every view has its model."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in (
        "import torch, course, ipywidgets as widgets\n"
        "from course.widgets import Playground\n"
        "x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))\n"
        "loader = course.TensorLoader(x, y, batch_size=8)\n"
        "model = torch.nn.Linear(4, 2)",
        "history = course.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, progress=True)",
        "def draw(fig, k):\n    fig.clear()\n    fig.subplots().plot(range(k))\n"
        "Playground(draw, {'k': widgets.IntSlider(value=3, min=1, max=9)})",
    )])
    env = dict(os.environ, COURSE_PROGRESS="1", PYTHONPATH=str(REPO))
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    reopened = nbformat.read(path, as_version=4)
    views, missing = _widget_views_without_state(reopened)
    assert missing == [], f"{len(missing)} of {views} widget views have no saved model"
    assert views == 1                      # the playground; the finished bars became text
    summaries = [o["data"]["text/plain"] for o in reopened.cells[1].outputs if o.get("output_type") == "display_data"]
    assert [s.split(":")[0] for s in summaries] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("train_loss" in s for s in summaries)
