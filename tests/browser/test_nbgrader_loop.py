"""The nbgrader loop as people use it, from JupyterLab's Nbgrader menu, in a headless Chromium.

One course folder with assignment 2 and an exchange made by ``odl-grade exchange init`` with two simulated
students, alice and bob (see autograder/exchange.py). JupyterLab servers: the instructor's, in the course folder
(formgrader reads the course's nbgrader_config.py from there), and each student's, with HOME set to their home
folder as scripts/as-student.sh does (their ~/.jupyter/nbgrader_config.py names the course, the exchange and their
id). The tests run in order, each on what the one before left:

1. instructor: Nbgrader > Formgrader, Generate then Release on the assignment's row (success dialogs, the row's
   state, the release in ``assignments/`` and in the exchange's outbound folder);
2. alice: Nbgrader > Assignment List, Fetch (her copy in her home folder);
3. alice: the notebook's Validate button on her unanswered copy (the dialog lists failing cells); she answers
   (on disk, the instructor's answers, as tests/test_exchange.py does); Validate again: "Success! Your notebook
   passes all the tests.";
4. alice: Submit in the Assignment List (the submission in the exchange's inbound folder);
5. bob, in his own JupyterLab: Fetch, answers with one typical mistake, Submit;
6. instructor: Collect in formgrader (two submissions, the notebooks in ``submitted/<student>``);
7. instructor: the submissions' page (the row's submission count), each student's autograde button: the course's
   grader (its nbgrader_config.py: hidden checks outside the kernel) grades them; the scores formgrader shows
   (alice all automatic points, bob fewer, as the gradebook says), ``autograded/<student>``, bob's mistake named
   by the hidden checks in his graded notebook;
8. instructor: Generate feedback and Release feedback on the assignment's row (HTML in ``feedback/`` and in the
   exchange);
9. alice: Fetch Feedback in the Assignment List (the HTML under ~/02_optimizers/feedback/<timestamp>/, her score
   in it, no hidden test source).

On a failure the message names a screenshot and the page's text, saved in the test's temporary folder.
"""

from __future__ import annotations

import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from autograder.exchange import init as init_exchange
from autograder.exchange import student_env
from autograder.release import SOLUTIONS, tool_env, write_course_config
from autograder.notebook import read_notebook
from autograder.submissions import MISTAKES, make_submission, write
from tests.browser.waiting import poll

ASSIGNMENT, NOTEBOOK, STUDENT, SECOND = "02_optimizers", "optimizers.ipynb", "alice", "bob"
COURSE_ID = "odl-pytorch"
WAIT_S = 120            # one nbgrader action (generate, release, fetch, submit, collect) on 2 shared cores
VALIDATE_S = 240        # validating assignment 2 runs the whole notebook: ~22 s on 2 idle cores
AUTOGRADE_S = 420       # formgrader's autograde of one submission (notebook and hidden checks): 30-90 s loaded
MISTAKE = MISTAKES[ASSIGNMENT][0]   # bob's (tests/test_exchange.py makes the same one)


class Loop:
    def __init__(self, base: Path):
        self.base = base
        self.course = base / "course"
        self.exchange = base / "exchange"
        self.homes = {student: base / "students" / student for student in (STUDENT, SECOND)}
        self.home = self.homes[STUDENT]
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
    made = init_exchange(state.course, root=state.exchange, students=[STUDENT, SECOND],
                         students_dir=base / "students")
    assert made.students == state.homes
    return state


@pytest.fixture(scope="module")
def instructor_lab(loop, lab_server):
    home = loop.base / "instructor"
    home.mkdir()
    env = dict(tool_env(), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(home / "config"))
    with lab_server(loop.course, home, env, cwd=loop.course) as server:
        yield server


def student_server(lab_server, home: Path):
    """As scripts/as-student.sh: HOME is the student's home, no JUPYTER_* folders; JupyterLab's settings where
    they are by default (~/.jupyter/lab/user-settings), with the test settings (no news, no windowing)."""
    return lab_server(home, home, student_env(home, tool_env()), cwd=home,
                      settings=home / ".jupyter" / "lab" / "user-settings")


@pytest.fixture(scope="module")
def student_lab(loop, lab_server):
    with student_server(lab_server, loop.home) as server:
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


def success_modal(driver, action: str, timeout: float = WAIT_S) -> str:
    """Wait for formgrader's answer to ``action``: its success dialog's text (an error dialog fails the test),
    then close it with its Close button."""
    from selenium.webdriver.common.by import By

    def answer():
        for modal_id in ("success-modal", "error-modal"):
            found = [m for m in driver.find_elements(By.ID, modal_id) if m.is_displayed()]
            if found:
                return modal_id, found[0]
        return None

    modal_id, modal = poll(answer, timeout, f"formgrader answered {action} with no dialog")
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
        # The "Current configuration" panel under the assignments shows the course's grading steps by name.
        config = browser.execute_script(
            "const p = document.querySelector('#collapseConfig pre'); return p ? p.textContent : null;")
        assert config, "formgrader shows no 'Current configuration' panel"
        for step in ("autograder.preprocessors.StartHiddenChecks", "autograder.preprocessors.RunHiddenChecks",
                     "autograder.structure.NormalizeSubmission"):
            assert step in config, f"formgrader's configuration panel does not name {step}:\n{config[:3000]}"
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


def submit(driver, loop, lab, student: str) -> None:
    """Submit in ``student``'s Assignment List; their submission in the exchange is their answered notebook."""
    inbound = loop.exchange / COURSE_ID / "inbound"
    answered = (loop.homes[student] / ASSIGNMENT / NOTEBOOK).read_bytes()
    assignment_list(driver, lab)
    poll(lambda: list_item(driver, "fetched_assignments_list", "Submit"), WAIT_S,
         f"the downloaded assignments show no Submit button for {ASSIGNMENT}").click()
    submitted = poll(lambda: [p for p in inbound.iterdir() if p.name.startswith(f"{student}+{ASSIGNMENT}+")],
                     WAIT_S, f"Submit put nothing for {student} in {inbound}")
    poll(lambda: ASSIGNMENT in section_text(driver, "submitted_assignments_list"), WAIT_S,
         f"{ASSIGNMENT} is not listed among the submitted assignments")
    assert len(submitted) == 1, submitted
    copy = submitted[0] / NOTEBOOK
    poll(lambda: copy.is_file() and copy.read_bytes() == answered, 30,
         f"the submission {copy} is not {student}'s answered notebook")


def test_student_submits_in_the_assignment_list(browser, loop, student_lab):
    loop.need("answered")
    with evidence(browser, loop.base / "evidence", "assignment-list-submit"):
        submit(browser, loop, student_lab, STUDENT)
    loop.done.add("submitted")


def test_second_student_fetches_and_submits_in_his_own_lab(browser, loop, lab_server):
    loop.need("released")
    home = loop.homes[SECOND]
    work = home / ASSIGNMENT / NOTEBOOK
    with student_server(lab_server, home) as bobs_lab, evidence(browser, loop.base / "evidence", "second-student"):
        assignment_list(browser, bobs_lab)
        poll(lambda: list_item(browser, "released_assignments_list", "Fetch"), WAIT_S,
             f"bob's released assignments show no Fetch button for {ASSIGNMENT}").click()
        poll(lambda: work.is_file(), WAIT_S, f"bob's Fetch wrote no {work}")
        poll(lambda: ASSIGNMENT in section_text(browser, "fetched_assignments_list"), WAIT_S,
             f"{ASSIGNMENT} did not move to bob's downloaded assignments")
        # bob answers with one typical mistake (on disk, as tests/test_exchange.py does)
        write(make_submission(work, loop.course / "solutions" / ASSIGNMENT / NOTEBOOK, [MISTAKE]), work)
        submit(browser, loop, bobs_lab, SECOND)
    assert (loop.home / ASSIGNMENT / NOTEBOOK).read_bytes() != work.read_bytes(), "bob's answers are alice's"
    loop.done.add("second submitted")


def test_instructor_collects_in_formgrader(browser, loop, instructor_lab):
    loop.need("submitted")
    loop.need("second submitted")
    with evidence(browser, loop.base / "evidence", "formgrader-collect"):
        enter_formgrader(browser, instructor_lab)
        assert row_text(browser, "num-submissions") == "0", "nothing is collected yet"
        click_in_row(browser, "collect", "Collect")
        text = success_modal(browser, "Collect")
        assert f"Successfully collected submissions of '{ASSIGNMENT}'" in text, text
        poll(lambda: row_text(browser, "num-submissions") == "2", 60,
             "the row does not count two submissions after collecting")
    browser.switch_to.default_content()
    for student, home in loop.homes.items():
        collected = loop.course / "submitted" / student / ASSIGNMENT / NOTEBOOK
        assert collected.is_file(), f"Collect wrote no {collected}"
        assert collected.read_bytes() == (home / ASSIGNMENT / NOTEBOOK).read_bytes(), \
            f"the collected notebook is not what {student} submitted"
    loop.done.add("collected")


def submission_row(driver, student: str):
    """Inside formgrader's Manage Submissions page: the student's row, once rendered."""
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, f'#main-table td.student-id[data-order="{student}"]')
    return cells[0].find_element(By.XPATH, "./ancestor::tr") if cells else None


def submission_cell(driver, student: str, cell: str) -> str:
    from selenium.webdriver.common.by import By

    row = submission_row(driver, student)
    return row.find_element(By.CSS_SELECTOR, f"td.{cell}").text.strip() if row else ""


def shown_score(driver, student: str) -> tuple[float, float] | None:
    """The 'score / max' formgrader shows in the student's row (empty until autograded)."""
    text = submission_cell(driver, student, "score")
    if "/" not in text:
        return None
    score, top = text.split("/")
    return float(score), float(top)


def points() -> tuple[float, float]:
    """(automatic, by hand): the assignment's points in its test cells and in its written answers."""
    automatic = manual = 0.0
    for cell in read_notebook(SOLUTIONS / ASSIGNMENT / NOTEBOOK).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            if meta.get("solution"):
                manual += meta.get("points", 0)
            else:
                automatic += meta.get("points", 0)
    return automatic, manual


def gradebook_scores(course: Path) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        return {s: (gb.find_submission(ASSIGNMENT, s).score, gb.find_submission(ASSIGNMENT, s).max_score)
                for s in (STUDENT, SECOND)}


def driver_scroll(driver, element) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)


def test_instructor_autogrades_each_submission_in_formgrader(browser, loop, instructor_lab):
    from selenium.webdriver.common.by import By

    loop.need("collected")
    automatic, manual = points()
    assert automatic > 0 and manual > 0, (automatic, manual)
    seconds = {}
    with evidence(browser, loop.base / "evidence", "formgrader-autograde"):
        enter_formgrader(browser, instructor_lab)
        # the row's submission count links to the assignment's Manage Submissions page
        click_in_row(browser, "num-submissions", "2")
        poll(lambda: submission_row(browser, STUDENT) and submission_row(browser, SECOND), 60,
             "the Manage Submissions page lists not both students")
        for student in (STUDENT, SECOND):
            assert submission_cell(browser, student, "status") == "needs autograding", \
                submission_cell(browser, student, "status")
            link = poll(lambda: submission_row(browser, student).find_elements(By.CSS_SELECTOR, "td.autograde a"),
                        30, f"{student}'s row has no autograde button")[0]
            driver_scroll(browser, link)
            started = time.monotonic()
            link.click()
            text = success_modal(browser, f"autograde of {student}", AUTOGRADE_S)
            seconds[student] = time.monotonic() - started
            assert f"Successfully autograded '{ASSIGNMENT}' for student '{student}'" in text, text
            poll(lambda: shown_score(browser, student), 60, f"formgrader shows no score for {student}")
        shown = {s: shown_score(browser, s) for s in (STUDENT, SECOND)}
        status = {s: submission_cell(browser, s, "status") for s in (STUDENT, SECOND)}
    browser.switch_to.default_content()
    print(f"formgrader autograde: {', '.join(f'{s} {t:.0f} s' for s, t in seconds.items())}; scores {shown}")
    # what formgrader shows is the gradebook's; the maximum counts the written answers too (graded by hand)
    for student, (score, top) in gradebook_scores(loop.course).items():
        assert shown[student] == pytest.approx((round(score, 2), round(top, 2))), (student, shown, score, top)
    assert shown[STUDENT] == pytest.approx((automatic, automatic + manual)), \
        f"alice answered as the instructor: all {automatic} automatic points, shown {shown[STUDENT]}"
    assert shown[SECOND][0] < shown[STUDENT][0], f"bob's mistake {MISTAKE.name} cost nothing: {shown}"
    assert status == {STUDENT: "needs manual grading", SECOND: "needs manual grading"}, status
    for student in (STUDENT, SECOND):
        graded = loop.course / "autograded" / student / ASSIGNMENT / NOTEBOOK
        assert graded.is_file(), f"formgrader's autograde wrote no {graded}"
    # the course's grader ran, not nbgrader's alone: its hidden checks name bob's mistake in his graded notebook
    bobs = (loop.course / "autograded" / SECOND / ASSIGNMENT / NOTEBOOK).read_text()
    assert MISTAKE.feedback not in (loop.course / "submitted" / SECOND / ASSIGNMENT / NOTEBOOK).read_text()
    assert MISTAKE.feedback in bobs, f"the hidden checks' finding '{MISTAKE.feedback}' is not in bob's notebook"
    assert MISTAKE.feedback not in (loop.course / "autograded" / STUDENT / ASSIGNMENT / NOTEBOOK).read_text()
    loop.done.add("autograded")


def test_instructor_generates_and_releases_feedback_in_formgrader(browser, loop, instructor_lab):
    loop.need("autograded")
    exchange_feedback = loop.exchange / COURSE_ID / "feedback"
    with evidence(browser, loop.base / "evidence", "formgrader-feedback"):
        enter_formgrader(browser, instructor_lab)
        click_in_row(browser, "generate-feedback", "Generate Feedback")
        text = success_modal(browser, "Generate Feedback", AUTOGRADE_S)
        assert f"Successfully generated feedback of '{ASSIGNMENT}'" in text, text
        for student in (STUDENT, SECOND):
            html = loop.course / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")
            assert html.is_file(), f"Generate Feedback wrote no {html}"
        assert not list(exchange_feedback.iterdir()), "generating feedback must not release it"
        click_in_row(browser, "release-feedback", "Release Feedback")
        text = success_modal(browser, "Release Feedback")
        assert f"Successfully released feedback of '{ASSIGNMENT}'" in text, text
    browser.switch_to.default_content()
    released = sorted(p.name for p in exchange_feedback.iterdir())
    # one file per submission, named by the hash of its secret (a student opens only their own)
    assert len(released) == 2 and all(name.endswith(".html") for name in released), released
    loop.done.add("feedback released")


def test_student_fetches_feedback_in_the_assignment_list(browser, loop, student_lab):
    loop.need("feedback released")
    folder = loop.home / ASSIGNMENT / "feedback"
    with evidence(browser, loop.base / "evidence", "assignment-list-feedback"):
        assignment_list(browser, student_lab)
        poll(lambda: "feedback available to fetch" in section_text(browser, "submitted_assignments_list"), WAIT_S,
             "alice's submitted assignment does not say there is feedback to fetch")
        poll(lambda: list_item(browser, "submitted_assignments_list", "Fetch Feedback"), WAIT_S,
             f"the submitted assignments show no Fetch Feedback button for {ASSIGNMENT}").click()
        found = poll(lambda: list(folder.glob(f"*/{NOTEBOOK.replace('.ipynb', '.html')}")), WAIT_S,
                     f"Fetch Feedback wrote no feedback under {folder}")
        poll(lambda: "view feedback" in section_text(browser, "submitted_assignments_list"), WAIT_S,
             "the submitted assignment offers no 'view feedback' link after fetching")
    browser.switch_to.default_content()
    assert len(found) == 1, found
    html = found[0].read_text()
    released = loop.course / "feedback" / STUDENT / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")
    assert html == released.read_text(), "alice's feedback is not the one generated for her"
    automatic, manual = points()
    score = re.search(r"Score: ([0-9.]+) / ([0-9.]+)", html)
    assert score, "alice's feedback shows no score"
    assert (float(score.group(1)), float(score.group(2))) == pytest.approx((automatic, automatic + manual)), \
        f"alice's feedback shows {score.group(0)}, not all {automatic} automatic points"
    # the course's ClearHiddenTests step: the hidden regions of the test cells (their placeholder text included)
    # and the hidden checks' source (autograder/checks: def test_...) never reach a student
    for hidden in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "Graded by the hidden checks of task", "def test_"):
        assert hidden not in html, f"alice's feedback contains hidden test source ({hidden!r})"
    assert "public checks passed" in html, "the feedback lacks the visible test cells' output (vacuous check)"
