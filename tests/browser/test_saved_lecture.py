"""A lecture run and saved in JupyterLab, reopened with a fresh kernel, as a student finds it the next day.

Lecture 04 (a playground, then training with progress bars): Run All in JupyterLab, save, shut the kernel down,
reopen. Nowhere in the reopened page may "Error displaying widget" appear (the finished progress bars were
"Error displaying widget: model not found", one per epoch; the playground's widgets need JupyterLab to save
widget state, which scripts/setup.sh turns on in the environment's overrides.json), and the saved outputs are
there: each epoch's summary line where its bar was, and the playground's figure.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.waiting import poll

LECTURE = "04_momentum_nesterov"
RUN_S = 420              # Run All of lecture 04: about 60-90 s on 2 idle cores; the browser and server share them
SUMMARY = re.compile(r"epoch 1/(\d+): train_loss \d")
OVERRIDES = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"

DONE_JS = """
const panel = window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.sessionContext || !panel.sessionContext.session) return 'no notebook';
const kernel = panel.sessionContext.session.kernel;
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
const pending = cells.filter(c => c.model.executionCount === null || c.promptNode.innerText.includes('*')).length;
const idle = kernel && kernel.status === 'idle';
return (idle && pending === 0) ? 'done' : `${kernel && kernel.status}, ${pending} pending`;
"""

ERRORS_JS = """
const found = [];
for (const node of document.querySelectorAll('.jp-OutputArea-output')) {
    const text = node.innerText || '';
    if (text.includes('Error displaying widget') || /Traceback \\(most recent call last\\)/.test(text)
        || node.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr')
        found.push(text.slice(0, 500));
}
return found;
"""

PLAYGROUND_JS = """
return [...document.querySelectorAll('.course-playground img')].map(i => i.naturalWidth);
"""


def open_notebook(driver, lab, path):
    driver.get(lab.url(path))
    poll(lambda: driver.execute_script(
        "const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return !!(p && p.content && p.content.widgets && p.content.widgets.length > 0)"), 120, f"{path} did not open")


def page_text(driver):
    return driver.execute_script("return document.body.innerText")


def fail_with_evidence(driver, folder: Path, message: str):
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / "page.png"))
    (folder / "page.txt").write_text(page_text(driver))
    pytest.fail(f"{message}\n(screenshot {folder / 'page.png'}, page text {folder / 'page.txt'})")


def test_a_lecture_saved_in_jupyterlab_reopens_with_its_outputs_and_no_widget_errors(browser, lab, tmp_path):
    assert OVERRIDES.is_file() and json.loads(OVERRIDES.read_text()).get(
        "@jupyter-widgets/jupyterlab-manager:plugin", {}).get("saveState") is True, \
        f"{OVERRIDES} does not make JupyterLab save widget state (scripts/setup.sh writes it)"
    path = "lectures/04_saved_in_lab.ipynb"           # a copy: the other tests keep an unsaved lecture 04
    saved = lab.root / path
    shutil.copy(lab.root / "lectures" / f"{LECTURE}.ipynb", saved)
    evidence = tmp_path / "evidence"
    try:
        open_notebook(browser, lab, path)
        poll(lambda: browser.execute_script(
            "const p = window.jupyterapp.shell.currentWidget; return !!(p.sessionContext.session"
            " && p.sessionContext.session.kernel && p.sessionContext.session.kernel.status === 'idle')"),
            120, f"{path}: kernel not ready")
        browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
        time.sleep(2)
        started = time.monotonic()
        poll(lambda: browser.execute_script(DONE_JS) == "done", RUN_S, f"{path}: Run All did not finish", 1)
        ran = time.monotonic() - started
        errors = browser.execute_script(ERRORS_JS)
        assert errors == [], f"errors while running the lecture: {errors}"
        live = page_text(browser)
        epochs = SUMMARY.search(live)
        assert epochs, "no epoch summary line in the page after training"
        assert browser.execute_script(PLAYGROUND_JS), "the running lecture shows no playground figure"

        browser.execute_async_script("const done = arguments[arguments.length - 1];"
                                     " window.jupyterapp.commands.execute('docmanager:save').then(() => done(true),"
                                     " e => done(String(e)));")
        poll(lambda: SUMMARY.search(saved.read_text()), 60, "the saved notebook holds no epoch summary line")
        nb = json.loads(saved.read_text())
        state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
        assert state.get("state"), "the saved notebook holds no widget state (saveState off?)"

        for session in lab.api("sessions"):            # a fresh kernel on reopening: no live widget models
            request = urllib.request.Request(f"{lab.base}/api/sessions/{session['id']}?token={lab.token}",
                                             method="DELETE")
            urllib.request.urlopen(request, timeout=30)
        poll(lambda: not lab.api("sessions"), 30, "the kernel did not shut down")

        open_notebook(browser, lab, path)
        last = int(epochs.group(1))
        poll(lambda: all(f"epoch {k}/{last}: train_loss" in page_text(browser) for k in range(1, last + 1)), 60,
             f"the reopened lecture does not show the {last} saved epoch summary lines")
        poll(lambda: browser.execute_script(PLAYGROUND_JS), 60, "the reopened lecture shows no playground figure")
        time.sleep(5)                                   # let every saved output render
        text = page_text(browser)
        assert "Error displaying widget" not in text, \
            [line for line in text.splitlines() if "Error displaying widget" in line]
        errors = browser.execute_script(ERRORS_JS)
        assert errors == [], f"errors in the reopened lecture: {errors}"
        assert all(w > 0 for w in browser.execute_script(PLAYGROUND_JS)), "a saved playground figure is blank"
    except AssertionError as exc:
        fail_with_evidence(browser, evidence, str(exc))
    print(f"{LECTURE}: Run All took {ran:.0f} s; reopened with {last} epoch lines and the playground's figure")
