"""The lectures in JupyterLab, in a real (headless Chromium) browser: run, then use each playground quickly.

For every lecture with a playground: open it, run every cell up to and including the playground's, then do
what an impatient student does: five arrow-key presses on every slider, toggle every checkbox, pick another entry in every dropdown, type a new
value in every text box, without waiting in between. Then: no traceback or error output anywhere in the page,
no "Error displaying widget", the playground's status line is empty, exactly one figure in the playground
(and in its cell), and the figure (or the text) has changed. A lecture run and saved in JupyterLab is reopened
with a fresh kernel: no "Error displaying widget: model not found" outside the playground (see the test).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# lecture -> "figure" (a course.widgets.Playground) or "text" (a TextPlayground)
PLAYGROUNDS = {
    "01_tensors": "text",
    "02_mnist_firstnet": "figure",
    "03_gradient_descent": "figure",
    "04_momentum_nesterov": "figure",
    "05_adaptive_methods": "figure",
    "07_initialization": "figure",
    "08_batch_normalization": "figure",
    "09_dropout": "figure",
    "10_data_augmentation": "figure",
    "11_transfer_learning": "figure",
    "12_second_order": "figure",
    "13_instrumenting_training": "figure",
}
RUN_S = 240              # a lecture runs in <= 60 s on 2 cores; the browser and server share those cores
SETTLE_S = 1.5           # the playground counts as settled when nothing changed for this long

ERRORS_JS = """
const texts = [];
for (const node of document.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')) {
    const text = node.innerText;
    if (/Traceback|Error|Exception/.test(text)) texts.push(text.slice(0, 2000));
}
for (const node of document.querySelectorAll('.jp-OutputArea-output')) {
    const text = node.innerText || '';
    if (text.includes('Error displaying widget') || /Traceback \\(most recent call last\\)/.test(text))
        texts.push(text.slice(0, 2000));
}
return texts;
"""

STATE_JS = """
const playgrounds = [...document.querySelectorAll('.course-playground')];
return playgrounds.map(p => {
    const cell = p.closest('.jp-Cell');
    const out = cell ? cell.querySelector('.jp-Cell-outputArea') : p;
    const status = p.querySelector(':scope > .widget-html');
    return {
        images: p.querySelectorAll('img').length,
        cellImages: out.querySelectorAll('img').length,
        figure: [...p.querySelectorAll('img.course-playground-figure')].map(i => i.src + ':' + i.naturalWidth),
        text: [...p.querySelectorAll('.course-playground-text')].map(t => t.innerText),
        status: status ? status.innerText.trim() : '',
    };
});
"""

# Run every cell up to and including the playground's (the cells after it are not needed for it; running them
# too doubled the time on 2 shared cores). The last code cell that builds a course.widgets playground.
RUN_JS = """
const app = window.jupyterapp;
const panel = app.shell.currentWidget;
await panel.context.ready;
await panel.sessionContext.ready;
const cells = panel.content.widgets;
let last = -1;
cells.forEach((c, i) => {
    if (c.model.type === 'code' && /Playground\\(/.test(c.model.sharedModel.getSource())) last = i;
});
window.__coursePlaygroundCell = last;
if (last < 0) return;
panel.content.activeCellIndex = last;
await app.commands.execute('notebook:run-all-above');
await app.commands.execute('notebook:run-cell');
"""

DONE_JS = """
const panel = window.jupyterapp.shell.currentWidget;
const last = window.__coursePlaygroundCell;
if (last === undefined) return 'not started';
if (last < 0) return 'no playground cell';
if (!panel || !panel.content || !panel.sessionContext.session) return 'no notebook';
const kernel = panel.sessionContext.session.kernel;
const cells = panel.content.widgets.slice(0, last + 1).filter(c => c.model.type === 'code');
const pending = cells.filter(c => c.model.executionCount === null || c.promptNode.innerText.includes('*')).length;
return (kernel && kernel.status === 'idle' && pending === 0) ? 'done' : `${kernel && kernel.status}, ${pending} pending`;
"""


def wait_for(driver, script, want, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = driver.execute_script(script)
        if last == want:
            return
        time.sleep(0.25)
    raise AssertionError(f"{what}: still {last!r} after {timeout} s")


def open_notebook(driver, lab, path):
    driver.get(lab.url(path))
    wait_for(driver, "return !!(window.jupyterapp && window.jupyterapp.shell.currentWidget"
                     " && window.jupyterapp.shell.currentWidget.content"
                     " && window.jupyterapp.shell.currentWidget.content.widgets.length > 0)",
             True, 90, f"{path} did not open")


def run_to_playground(driver, lab, path):
    open_notebook(driver, lab, path)
    wait_for(driver, "const p = window.jupyterapp.shell.currentWidget; return !!(p.sessionContext.session"
                     " && p.sessionContext.session.kernel && p.sessionContext.session.kernel.status === 'idle')",
             True, 90, f"{path}: kernel not ready")
    driver.execute_script(f"(async () => {{ {RUN_JS} }})();")
    time.sleep(1)
    wait_for(driver, DONE_JS, "done", RUN_S, f"{path}: running the cells up to the playground")


def settle(driver, timeout=30):
    """Wait until the playgrounds' state has not changed for SETTLE_S; returns it and how long it took."""
    start = time.monotonic()
    state, since = driver.execute_script(STATE_JS), time.monotonic()
    while time.monotonic() - since < SETTLE_S:
        if time.monotonic() - start > timeout:
            raise AssertionError(f"the playground kept changing for {timeout} s")
        time.sleep(0.1)
        now = driver.execute_script(STATE_JS)
        if now != state:
            state, since = now, time.monotonic()
    return state, since - start


def use_quickly(driver, playground):
    """Every control of the playground, quickly: arrows on sliders, toggles, another option, typing."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    used = []
    for handle in playground.find_elements(By.CSS_SELECTOR, ".noUi-handle"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();", handle)
        ActionChains(driver).click(handle).perform()
        for _ in range(5):
            handle.send_keys(Keys.ARROW_RIGHT)
        used.append("slider")
    for box in playground.find_elements(By.CSS_SELECTOR, ".widget-checkbox input[type=checkbox]"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
        box.click()
        used.append("checkbox")
    for select in playground.find_elements(By.CSS_SELECTOR, ".widget-dropdown select"):
        choice = Select(select)
        choice.select_by_index((len(choice.options) - 1) if choice.options[0].is_selected() else 0)
        used.append("dropdown")
    for field in playground.find_elements(By.CSS_SELECTOR, ".widget-combobox input, .widget-text input"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
        field.click()
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys("3, 1")
        field.send_keys(Keys.ENTER)
        used.append("text")
    return used


@pytest.mark.parametrize("lecture", list(PLAYGROUNDS))
def test_playground_survives_quick_input(browser, lab, lecture):
    from selenium.webdriver.common.by import By

    run_to_playground(browser, lab, f"lectures/{lecture}.ipynb")
    before, _ = settle(browser)
    assert len(before) == 1, f"expected one playground, found {len(before)}"
    kind = PLAYGROUNDS[lecture]
    if kind == "figure":
        assert before[0]["images"] == 1 and before[0]["cellImages"] == 1, before
        assert before[0]["figure"][0].split(":")[-1] != "0", "the figure is blank (not rendered)"
    else:
        assert before[0]["text"] and before[0]["text"][0].strip(), before
    assert browser.execute_script(ERRORS_JS) == []

    playground = browser.find_element(By.CSS_SELECTOR, ".course-playground")
    used = use_quickly(browser, playground)
    assert used, "the playground has no control the test knows how to use"
    after, seconds = settle(browser)
    errors = browser.execute_script(ERRORS_JS)
    assert errors == [], errors
    assert len(after) == 1 and after[0]["status"] == "", after
    if kind == "figure":
        assert after[0]["images"] == 1 and after[0]["cellImages"] == 1, after   # one figure, never two
        assert after[0]["figure"] != before[0]["figure"], "the figure did not change"
        assert after[0]["figure"][0].split(":")[-1] != "0", "the figure is blank"
    else:
        assert after[0]["text"] != before[0]["text"], "the text did not change"
    print(f"{lecture}: used {', '.join(used)}; settled {seconds:.1f} s after the last input")


SAVED_ERRORS_JS = """
const cells = window.jupyterapp.shell.currentWidget.content.widgets;
const found = [];
cells.forEach((c, i) => {
    const text = c.node.innerText || '';
    if (text.includes('Error displaying widget')) found.push([i, c.model.sharedModel.getSource().slice(0, 80)]);
});
return found;
"""
