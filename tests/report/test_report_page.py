"""The report page in headless Chromium, opened from disk: every thumbnail decodes, worst first by default, sorting
by id and score and the text filter work, boxes are drawn, and the console stays free of errors; a mixture's page
sorts and filters each task's section on its own.

Skipped when Chromium or its driver is missing (`.ci/run` installs them), as the serving page's test is.
"""

from __future__ import annotations

import pytest

pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[dev]'")

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from ofa_core.cli import main
from tests.report.conftest import BOXES, report_command
from tests.serving.test_page import browser_paths, driver  # noqa: F401  (the page test's browser fixtures)


@pytest.fixture(scope="module")
def report(grounding, tmp_path_factory):
    out = tmp_path_factory.mktemp("report-page") / "report.html"
    assert main(report_command(grounding, out, "--run", str(grounding["run"]))) == 0
    return out


def _ids(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('section.task article'))"
        ".filter(card => !card.hidden).map(card => card.dataset.id);"
    )


def _scores(driver) -> list[float]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('section.task article'))"
        ".map(card => parseFloat(card.dataset.score));"
    )


def test_report_page_decodes_sorts_filters_without_console_errors(driver, report, tmp_path) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(report.as_uri())
    assert driver.title == "OFA evaluation report"
    images = driver.execute_script("return Array.from(document.images).map(img => img.complete && img.naturalWidth);")
    assert len(images) == len(BOXES) and all(width and width > 0 for width in images), images
    scores = _scores(driver)
    assert scores == sorted(scores) and _ids(driver)[0] == "g3"  # worst first by default
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.boxes rect.predicted")) == len(BOXES)
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.curve polyline")) == 4

    sort = Select(driver.find_element(By.CSS_SELECTOR, "section.task select.sort"))
    sort.select_by_value("id")
    assert _ids(driver) == sorted(BOXES)
    sort.select_by_value("best")
    assert _scores(driver) == sorted(scores, reverse=True)
    sort.select_by_value("worst")
    assert _scores(driver) == scores

    search = driver.find_element(By.CSS_SELECTOR, "section.task input.filter")
    search.send_keys("green")
    assert _ids(driver) == ["g1"]
    assert driver.find_element(By.CSS_SELECTOR, "section.task .visible").text == "1 of 4 match"
    search.clear()
    search.send_keys(" ")  # an input event with no words: every card again
    assert sorted(_ids(driver)) == sorted(BOXES)

    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert driver.save_screenshot(str(tmp_path / "report.png"))


def _section_ids(driver, index: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('section.task')[arguments[0]].querySelectorAll('article'))"
        ".filter(card => !card.hidden).map(card => card.dataset.id);",
        index,
    )


def test_a_mixture_s_page_sorts_and_filters_each_task_on_its_own(driver, mixture) -> None:
    out = mixture["root"] / "page.html"
    arguments = ["report", *map(str, mixture["files"]), "--recipe", str(mixture["recipe"]), "--out", str(out)]
    assert main(arguments) == 0
    driver.get_log("browser")
    driver.get(out.as_uri())
    assert [title.text for title in driver.find_elements(By.CSS_SELECTOR, "section.task h2")] == ["boxes", "summary"]
    images = driver.execute_script("return Array.from(document.images).map(img => img.complete && img.naturalWidth);")
    assert len(images) == len(BOXES) and all(images), images  # the summaries are text: no image, none broken
    assert _section_ids(driver, 0)[0] == "g3" and _section_ids(driver, 1) == ["s:3", "s:2", "s:1"]  # worst first

    Select(driver.find_elements(By.CSS_SELECTOR, "section.task select.sort")[1]).select_by_value("best")
    assert _section_ids(driver, 1) == ["s:1", "s:2", "s:3"] and _section_ids(driver, 0)[0] == "g3"
    driver.find_elements(By.CSS_SELECTOR, "section.task input.filter")[1].send_keys("dog")
    assert _section_ids(driver, 1) == ["s:2"] and len(_section_ids(driver, 0)) == len(BOXES)
    assert [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")] == []
