"""The explorer in headless Chromium (selenium), opened from file://.

The page is the one `advpath run` writes, built here by ``write_explorer`` from fixture arrays
(see conftest.py) so that the test needs no training and stays well under a minute; the
files of a real tiny run are checked in test_build.py.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"),
]


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _gallery_order(driver) -> list[int]:
    return [int(t.get_attribute("data-index")) for t in driver.find_elements("css selector", "#gallery .tile")]


def _all_images_loaded(driver, css: str) -> bool:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].every(i => i.complete && i.naturalWidth > 0);", css)


def _screenshot(driver, tmp_path, name: str) -> None:
    driver.save_screenshot(str(tmp_path / name))
    target = os.environ.get("ADVPATH_SCREENSHOT_DIR")
    if target:
        os.makedirs(target, exist_ok=True)
        shutil.copy(tmp_path / name, os.path.join(target, name))


def test_explorer_in_chromium(fixture_site, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    site, results = fixture_site
    index = json.loads((site / "index.json").read_text())
    n, names = index["n"], [m["name"] for m in index["methods"]]
    browser.get((site / "index.html").as_uri())
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: len(_gallery_order(d)) == n)
    wait.until(lambda d: _all_images_loaded(d, "#gallery img"))
    assert _gallery_order(browser) == list(range(n))  # every test image, in test order
    assert browser.find_element(By.ID, "count").text == f"{n} of {n} images"
    _screenshot(browser, tmp_path, "explorer_gallery.png")

    # sort by a per-image metric of a method: the order the fixture's values give
    assert "maps missing for 4 of 10" in browser.find_element(By.ID, "notices").text
    Select(browser.find_element(By.ID, "method")).select_by_value(names[2])
    assert "no map" in browser.find_element(By.CSS_SELECTOR, '.tile[data-index="9"]').text
    assert "no map" not in browser.find_element(By.CSS_SELECTOR, '.tile[data-index="5"]').text
    Select(browser.find_element(By.ID, "method")).select_by_value("CyCE:E")
    Select(browser.find_element(By.ID, "sort")).select_by_value("R")
    Select(browser.find_element(By.ID, "order")).select_by_value("desc")
    per_image = results["per_image"]
    r = dict(zip(per_image["subset"], per_image["methods"]["CyCE:E"]["R"]))
    expected = sorted(r, key=lambda i: (-r[i], i)) + [i for i in range(n) if i not in r]
    assert _gallery_order(browser) == expected != list(range(n))

    # filters: predicted class 1 only
    Select(browser.find_element(By.ID, "f-pred")).select_by_value("1")
    shown = set(_gallery_order(browser))
    assert shown == {i for i in range(n) if index["images"]["pred"][i] == 1}
    Select(browser.find_element(By.ID, "f-pred")).select_by_value("all")

    # detail view: every method, the pair and its path, keyboard navigation
    first = expected[0]
    browser.find_element(By.CSS_SELECTOR, f'.tile[data-index="{first}"]').click()
    wait.until(lambda d: d.find_element(By.ID, "detail").is_displayed())
    cards = browser.find_elements(By.CSS_SELECTOR, "#method-grid .method-card")
    assert [c.get_attribute("data-method") for c in cards] == names
    assert [p.get_attribute("data-pair") for p in browser.find_elements(By.CSS_SELECTOR, ".pair-card")] == ["cyce", "syce"]
    assert len(browser.find_elements(By.CSS_SELECTOR, ".score-plot polyline")) == 2
    wait.until(lambda d: _all_images_loaded(d, "#detail img"))
    assert f"#{first} " in browser.find_element(By.CSS_SELECTOR, "#detail h2").text
    assert f"{r[first]:.3f}" in browser.find_element(By.CSS_SELECTOR, '.method-card[data-method="CyCE:E"]').text
    Select(browser.find_element(By.ID, "pct")).select_by_value("99")
    assert browser.find_elements(By.CSS_SELECTOR, 'img[src*="/p99/"]')
    _screenshot(browser, tmp_path, "explorer_detail.png")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    assert f"#{expected[1]} " in browser.find_element(By.CSS_SELECTOR, "#detail h2").text
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT)
    assert f"#{first} " in browser.find_element(By.CSS_SELECTOR, "#detail h2").text
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    assert browser.find_element(By.ID, "gallery").is_displayed()

    # the report's tables, sortable, and the AOPC figure
    browser.find_element(By.ID, "tab-tables").click()
    rows = browser.find_elements(By.CSS_SELECTOR, "#table1 tr")
    assert len(rows) == 1 + len(index["tables"]["methods"])
    header = browser.find_elements(By.CSS_SELECTOR, "#table1 th")[1]  # IoU at the first percentile
    header.click()
    table1 = index["tables"]["table1"]
    p = index["percentiles"][0]
    want = sorted(table1, key=lambda m: -table1[m][p]["iou"]["mean"])
    got = [row.find_elements(By.TAG_NAME, "td")[0].text for row in browser.find_elements(By.CSS_SELECTOR, "#table1 tr")[1:]]
    assert got == want
    wait.until(lambda d: _all_images_loaded(d, "#aopc-figure"))
    _screenshot(browser, tmp_path, "explorer_tables.png")
    assert _errors(browser) == []
    assert np.all([os.path.getsize(tmp_path / f) > 5000 for f in os.listdir(tmp_path) if f.endswith(".png")])
