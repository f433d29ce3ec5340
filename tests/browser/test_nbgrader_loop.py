"""The nbgrader loop as people use it, from JupyterLab's Nbgrader menu, in a headless Chromium.

One course folder with assignment 2 and an exchange made by ``odl-grade exchange init`` with one simulated
student, alice (see autograder/exchange.py). Two JupyterLab servers: the instructor's, in the course folder
(formgrader reads the course's nbgrader_config.py from there), and alice's, with HOME set to her home folder as
scripts/as-student.sh does (her ~/.jupyter/nbgrader_config.py names the course, the exchange and her id).
The tests run in order, each on what the one before left:

1. instructor: Nbgrader > Formgrader, Generate then Release on the assignment's row (success dialogs, the row's
   state, the release in ``assignments/`` and in the exchange's outbound folder);
2. alice: Nbgrader > Assignment List, Fetch (her copy in her home folder);
3. alice: the notebook's Validate button on her unanswered copy (the dialog lists failing cells); she answers
   (on disk, the instructor's answers, as tests/test_exchange.py does); Validate again: "Success! Your notebook
   passes all the tests.";
4. alice: Submit in the Assignment List (the submission in the exchange's inbound folder);
5. instructor: Collect in formgrader (one submission, the notebook in ``submitted/alice``).

On a failure the message names a screenshot and the page's text, saved in the test's temporary folder.
"""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from autograder.exchange import init as init_exchange
from autograder.exchange import student_env
from autograder.release import SOLUTIONS, tool_env, write_course_config
from autograder.submissions import make_submission, write

ASSIGNMENT, NOTEBOOK, STUDENT = "02_optimizers", "optimizers.ipynb", "alice"
COURSE_ID = "odl-pytorch"
WAIT_S = 120            # one nbgrader action (generate, release, fetch, submit, collect) on 2 shared cores
VALIDATE_S = 240        # validating assignment 2 runs the whole notebook: ~22 s on 2 idle cores


class Loop:
    def __init__(self, base: Path):
        self.base = base
        self.course = base / "course"
        self.exchange = base / "exchange"
        self.home = base / "students" / STUDENT
        self.done: set[str] = set()     # the steps that passed, for the next tests' preconditions

    def need(self, step: str) -> None:
        if step not in self.done:
            pytest.fail(f"this step needs the earlier step '{step}', which did not pass")


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    base = tmp_path_factory.mktemp("loop")
    state = Loop(base)
    state.course.mkdir()
    write_course_config(state.course)
    shutil.copytree(SOLUTIONS / ASSIGNMENT, state.course / "solutions" / ASSIGNMENT,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    made = init_exchange(state.course, root=state.exchange, students=[STUDENT], students_dir=base / "students")
    assert made.students == {STUDENT: state.home}
    return state


@pytest.fixture(scope="module")
def instructor_lab(loop, lab_server):
    home = loop.base / "instructor"
    home.mkdir()
    env = dict(tool_env(), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(home / "config"))
    with lab_server(loop.course, home, env, cwd=loop.course) as server:
        yield server


@pytest.fixture(scope="module")
def student_lab(loop, lab_server):
    # as scripts/as-student.sh: HOME is the student's home, no JUPYTER_* folders; JupyterLab's settings where
    # they are by default (~/.jupyter/lab/user-settings), with the test settings (no news, no windowing)
    env = student_env(loop.home, tool_env())
    with lab_server(loop.home, loop.home, env, cwd=loop.home,
                   settings=loop.home / ".jupyter" / "lab" / "user-settings") as server:
        yield server


@contextmanager
def evidence(driver, folder: Path, name: str):
    """On a failure: a screenshot and the page's text (the iframe's too) in ``folder``, named in the message."""
    try:
        yield
    except Exception as exc:
        folder.mkdir(parents=True, exist_ok=True)
        shot, text = folder / f"{name}.png", folder / f"{name}.txt"
        try:
            driver.save_screenshot(str(shot))
            parts = [driver.execute_script("return document.body ? document.body.innerText : ''")]
            driver.switch_to.default_content()
            parts.insert(0, driver.execute_script("return document.body ? document.body.innerText : ''"))
            text.write_text("\n\n---- (frame) ----\n\n".join(parts))
        except Exception as failed:  # the evidence is a help, never the failure
            text.write_text(f"could not save the page: {failed!r}")
        raise AssertionError(f"{exc}\n(screenshot {shot}, page text {text})") from exc


def poll(check, timeout: float, what: str, interval: float = 0.5):
    """check() until it returns something truthy; its last value (or exception) in the message otherwise."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # the page is re-rendering: stale elements, missing frames
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what}: not so after {timeout:.0f} s (last: {last!r})")


def open_lab(driver, lab):
    driver.switch_to.default_content()
    driver.get(f"{lab.base}/lab?reset&token={lab.token}")
    poll(lambda: driver.execute_script("return !!(window.jupyterapp && window.jupyterapp.started"
                                       " && document.querySelector('.lm-MenuBar-item'))"), 120,
         "JupyterLab did not start in the browser")
    # JupyterLab's own promise; the menus are there once it resolved
    driver.execute_async_script("const done = arguments[arguments.length - 1];"
                                " window.jupyterapp.restored.then(() => done(true));")


def menu(driver, top: str, item: str):
    """Click ``top`` in JupyterLab's menu bar, then ``item`` in the menu it opens, as a person does."""
    from selenium.webdriver.common.by import By

    def find(selector, label):
        for element in driver.find_elements(By.CSS_SELECTOR, selector):
            if element.text.strip() == label and element.is_displayed():
                return element
        return None

    poll(lambda: find(".lm-MenuBar-item", top), 60, f"the menu bar has no '{top}' menu").click()
    poll(lambda: find(".lm-Menu-item", item), 30, f"the '{top}' menu has no '{item}' item").click()


def formgrader_row(driver):
    """Inside formgrader's frame: the assignment's row of the Manage Assignments table, once rendered."""
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, f'td.name[data-order="{ASSIGNMENT}"]')
    return cells[0].find_element(By.XPATH, "./ancestor::tr") if cells else None


def enter_formgrader(driver, lab):
    from selenium.webdriver.common.by import By

    open_lab(driver, lab)
    menu(driver, "Nbgrader", "Formgrader")
    frame = poll(lambda: [f for f in driver.find_elements(By.CSS_SELECTOR, "iframe")
                          if "/formgrader" in (f.get_attribute("src") or "")], 60,
                 "Nbgrader > Formgrader opened no formgrader frame")[0]
    driver.switch_to.frame(frame)
    return poll(lambda: formgrader_row(driver), 90, f"formgrader shows no row for {ASSIGNMENT}")


def click_in_row(driver, cell: str, label: str):
    """Click the link ``label`` in the row's ``td.<cell>`` (the row is re-rendered after each action)."""
    from selenium.webdriver.common.by import By

    def link():
        row = formgrader_row(driver)
        links = row.find_elements(By.CSS_SELECTOR, f"td.{cell} a") if row else []
        return links[0] if links else None

    element = poll(link, 60, f"the {ASSIGNMENT} row has no link in its '{cell}' column")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def success_modal(driver, action: str) -> str:
    """Wait for formgrader's answer to ``action``: its success dialog's text (an error dialog fails the test),
    then close it with its Close button."""
    from selenium.webdriver.common.by import By

    def answer():
        for modal_id in ("success-modal", "error-modal"):
            found = [m for m in driver.find_elements(By.ID, modal_id) if m.is_displayed()]
            if found:
                return modal_id, found[0]
        return None

    modal_id, modal = poll(answer, WAIT_S, f"formgrader answered {action} with no dialog")
    text = poll(lambda: modal.text.strip(), 10, f"the {action} dialog is empty")
    assert modal_id == "success-modal", f"formgrader's {action} failed:\n{text}"
    close = [b for b in modal.find_elements(By.CSS_SELECTOR, "button[data-dismiss=modal]") if b.is_displayed()]
    assert close, f"the {action} dialog has no Close button"
    close[-1].click()
    poll(lambda: not [m for m in driver.find_elements(By.ID, modal_id) if m.is_displayed()], 30,
         f"the {action} dialog did not close")
    return text


def row_text(driver, cell: str) -> str:
    from selenium.webdriver.common.by import By

    row = formgrader_row(driver)
    return row.find_element(By.CSS_SELECTOR, f"td.{cell}").text.strip() if row else ""


def test_instructor_generates_and_releases_in_formgrader(browser, loop, instructor_lab):
    outbound = loop.exchange / COURSE_ID / "outbound" / ASSIGNMENT / NOTEBOOK
    with evidence(browser, loop.base / "evidence", "formgrader-release"):
        enter_formgrader(browser, instructor_lab)
        assert row_text(browser, "status") == "draft", "a new assignment should be a draft"
        click_in_row(browser, "assign", "Generate")
        text = success_modal(browser, "Generate")
        assert f"Successfully created the student version of '{ASSIGNMENT}'" in text, text
        assert (loop.course / "assignments" / ASSIGNMENT / NOTEBOOK).is_file(), "Generate wrote no release"
        assert not outbound.exists(), "generating must not release"

        click_in_row(browser, "release", "Release")
        text = success_modal(browser, "Release")
        assert f"Successfully released '{ASSIGNMENT}'" in text, text
        poll(lambda: row_text(browser, "status") == "released", 30, "the row's status did not become 'released'")
        assert outbound.is_file(), f"Release put nothing in the exchange ({outbound})"
        assert outbound.read_bytes() == (loop.course / "assignments" / ASSIGNMENT / NOTEBOOK).read_bytes()
    browser.switch_to.default_content()
    loop.done.add("released")


def assignment_list(driver, lab):
    from selenium.webdriver.common.by import By

    open_lab(driver, lab)
    menu(driver, "Nbgrader", "Assignment List")
    poll(lambda: driver.find_elements(By.CSS_SELECTOR, "#released_assignments_list"), 60,
         "Nbgrader > Assignment List opened no assignment list")


def list_item(driver, list_id: str, button_label: str):
    """The button ``button_label`` of the assignment's item in the Assignment List's ``list_id`` section."""
    from selenium.webdriver.common.by import By

    for item in driver.find_elements(By.CSS_SELECTOR, f"#{list_id} .list_item"):
        if ASSIGNMENT in item.text:
            for button in item.find_elements(By.CSS_SELECTOR, "button"):
                if button.text.strip() == button_label and button.is_displayed() and button.is_enabled():
                    return button
    return None


def section_text(driver, list_id: str) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f"#{list_id}")
    return found[0].text if found else f"(no #{list_id})"


def test_student_fetches_in_the_assignment_list(browser, loop, student_lab):
    loop.need("released")
    work = loop.home / ASSIGNMENT / NOTEBOOK
    with evidence(browser, loop.base / "evidence", "assignment-list-fetch"):
        assignment_list(browser, student_lab)
        poll(lambda: list_item(browser, "released_assignments_list", "Fetch"), WAIT_S,
             f"the released assignments show no Fetch button for {ASSIGNMENT}").click()
        poll(lambda: work.is_file(), WAIT_S, f"Fetch wrote no {work}")
        poll(lambda: ASSIGNMENT in section_text(browser, "fetched_assignments_list"), WAIT_S,
             f"{ASSIGNMENT} did not move to the downloaded assignments")
        assert ASSIGNMENT not in section_text(browser, "released_assignments_list"), \
            "a fetched assignment is still offered for fetching"
    release = loop.course / "assignments" / ASSIGNMENT / NOTEBOOK
    assert work.read_bytes() == release.read_bytes(), "the fetched copy is not the release"
    loop.done.add("fetched")


def validate(driver, lab, path: str) -> tuple[str, float]:
    """Open ``path`` in ``lab``, click the notebook's Validate button, wait for the results dialog; its text
    and how long it took. The dialog is closed with its OK button."""
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    driver.get(f"{lab.base}/lab/tree/{path}?reset&token={lab.token}")
    poll(lambda: driver.execute_script(
        "const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return !!(p && p.content && p.content.widgets && p.content.widgets.length > 0)"), 120,
        f"{path} did not open")
    # nbgrader's ToolbarButton (className validate-button): JupyterLab 4 renders it as a jp-button element
    button = poll(lambda: [b for b in driver.find_elements(
        By.CSS_SELECTOR, ".jp-NotebookPanel-toolbar .validate-button, .jp-NotebookPanel-toolbar jp-button")
        if b.is_displayed() and b.text.strip() == "Validate"], 60,
        "the notebook's toolbar has no Validate button")[0]
    started = time.monotonic()
    button.click()
    dialog = poll(lambda: [d for d in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
                           if "Validation Results" in d.text], VALIDATE_S,
                  "Validate showed no 'Validation Results' dialog")[0]
    seconds = time.monotonic() - started
    text = dialog.text
    dialog.find_element(By.CSS_SELECTOR, ".jp-Dialog-button.jp-mod-accept").click()
    poll(lambda: not driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog"), 30, "the dialog did not close")
    return text, seconds


def test_validate_button_fails_the_unanswered_notebook(browser, loop, student_lab):
    loop.need("fetched")
    path = f"{ASSIGNMENT}/{NOTEBOOK}"
    with evidence(browser, loop.base / "evidence", "validate-unanswered"):
        text, seconds = validate(browser, student_lab, path)
    assert "Success!" not in text, f"an unanswered notebook passed:\n{text}"
    assert "The following cell failed:" in text, f"the dialog names no failing cell:\n{text}"
    assert "NotImplementedError" in text, f"the dialog does not show the unanswered cells' error:\n{text[:3000]}"
    print(f"Validate on the unanswered {path}: {text.count('The following cell failed:')} failed cells shown "
          f"after {seconds:.1f} s")


def test_validate_button_passes_a_solved_notebook(browser, loop, student_lab):
    loop.need("fetched")
    work = loop.home / ASSIGNMENT / NOTEBOOK
    # alice answers: the instructor's answers in her copy (as tests/test_exchange.py)
    write(make_submission(work, loop.course / "solutions" / ASSIGNMENT / NOTEBOOK), work)
    path = f"{ASSIGNMENT}/{NOTEBOOK}"
    with evidence(browser, loop.base / "evidence", "validate"):
        text, seconds = validate(browser, student_lab, path)
    assert "Success! Your notebook passes all the tests." in text, f"the dialog says:\n{text}"
    assert "failed" not in text.lower() and "error" not in text.lower(), f"the dialog says:\n{text}"
    print(f"Validate on the solved {path}: success after {seconds:.1f} s")
    loop.done.add("answered")


def test_student_submits_in_the_assignment_list(browser, loop, student_lab):
    loop.need("answered")
    inbound = loop.exchange / COURSE_ID / "inbound"
    answered = (loop.home / ASSIGNMENT / NOTEBOOK).read_bytes()
    with evidence(browser, loop.base / "evidence", "assignment-list-submit"):
        assignment_list(browser, student_lab)
        poll(lambda: list_item(browser, "fetched_assignments_list", "Submit"), WAIT_S,
             f"the downloaded assignments show no Submit button for {ASSIGNMENT}").click()
        submitted = poll(lambda: [p for p in inbound.iterdir() if p.name.startswith(f"{STUDENT}+{ASSIGNMENT}+")],
                         WAIT_S, f"Submit put nothing for {STUDENT} in {inbound}")
        poll(lambda: ASSIGNMENT in section_text(browser, "submitted_assignments_list"), WAIT_S,
             f"{ASSIGNMENT} is not listed among the submitted assignments")
    assert len(submitted) == 1, submitted
    copy = submitted[0] / NOTEBOOK
    poll(lambda: copy.is_file() and copy.read_bytes() == answered, 30,
         f"the submission {copy} is not alice's answered notebook")
    loop.done.add("submitted")


def test_instructor_collects_in_formgrader(browser, loop, instructor_lab):
    loop.need("submitted")
    with evidence(browser, loop.base / "evidence", "formgrader-collect"):
        enter_formgrader(browser, instructor_lab)
        assert row_text(browser, "num-submissions") == "0", "nothing is collected yet"
        click_in_row(browser, "collect", "Collect")
        text = success_modal(browser, "Collect")
        assert f"Successfully collected submissions of '{ASSIGNMENT}'" in text, text
        poll(lambda: row_text(browser, "num-submissions") == "1", 60,
             "the row does not count one submission after collecting")
    browser.switch_to.default_content()
    collected = loop.course / "submitted" / STUDENT / ASSIGNMENT / NOTEBOOK
    assert collected.is_file(), f"Collect wrote no {collected}"
    assert collected.read_bytes() == (loop.home / ASSIGNMENT / NOTEBOOK).read_bytes(), \
        "the collected notebook is not what alice submitted"
