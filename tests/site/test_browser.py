"""The built site in a real browser: Debian's Chromium, driven by Selenium, over 127.0.0.1.

Every chapter page must load without console errors (resources from other hosts aside: the machine
may be offline), typeset its equations with the MathJax that the site itself serves, show its
figures (on an executed build), link to its own notebook on Colab, and keep every solution folded
until a click. A screenshot of one chapter is saved as ``_build/site-screenshot.png``.

Needs ``chromium`` and ``chromedriver`` (Debian: ``apt-get install chromium chromium-driver``;
``.ci/run`` installs them). Without them this file is skipped, and ``make test-site`` says so.
"""

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest
from course_links import colab_link, repository

ROOT = Path(__file__).resolve().parents[2]
REPO_URL, BRANCH = repository()
CHAPTERS = sorted(p.relative_to(ROOT) for p in (ROOT / "book").glob("part*/[0-9][0-9]_*.ipynb"))
# Debian's chromium; on a GitHub Ubuntu runner, its preinstalled Google Chrome (with its chromedriver).
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("google-chrome")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="SITE TEST IN A BROWSER SKIPPED: Debian's chromium and chromium-driver are not installed",
)


@pytest.fixture(scope="module")
def site_url():
    folder = os.environ.get("COURSE_SITE", "")
    assert folder and (Path(folder) / "index.html").is_file(), "set COURSE_SITE to a built site"
    handler = functools.partial(QuietHandler, directory=folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# Not the page's doing, or harmless: the browser's own request for /favicon.ico; the theme's note that
# a new browser profile has stored no light/dark preference yet; MathJax 2's probe for installed fonts
# (a font "loaded" from about:blank, which Chromium refuses); and the TeX web fonts (AMS, Script) that
# MathJax's HTML-CSS output asks for and the packaged MathJax omits: those glyphs come from STIX-Web.
BENIGN = ("/favicon.ico", "Got invalid theme mode", "font at 'about:blank'", "about:blank - Failed to load resource",
          "/_static/mathjax/fonts/HTML-CSS/TeX/otf/")


def local_errors(driver, origin):
    """Console errors, except those about resources from other hosts (badges, when offline)."""
    errors = []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE" or any(b in entry["message"] for b in BENIGN):
            continue
        urls = re.findall(r"https?://[^\s\"']+", entry["message"])
        if urls and all(not u.startswith(origin) for u in urls):
            continue
        errors.append(entry["message"])
    return errors


def wait_for(driver, script, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(script))


TYPESET = """
const math = document.querySelectorAll('.math.notranslate');
if (math.length === 0) return 'none';
if (!(window.MathJax && MathJax.Hub && MathJax.Hub.queue && MathJax.Hub.queue.pending === 0
      && MathJax.Hub.queue.running === 0 && document.querySelectorAll('script[type^="math/tex"]').length > 0)) return false;
return document.querySelectorAll('script[type^="math/tex"]').length + '/' + math.length;
"""


@pytest.mark.parametrize("chapter", CHAPTERS, ids=str)
def test_chapter_in_a_browser(browser, site_url, chapter):
    from selenium.webdriver.common.by import By

    browser.get_log("browser")  # forget the previous page's messages
    browser.get(f"{site_url}/{chapter.with_suffix('.html').as_posix()}")
    wait_for(browser, "return document.readyState === 'complete'")

    typeset = wait_for(browser, TYPESET, timeout=60)
    if typeset != "none":
        done, total = map(int, typeset.split("/"))
        assert done >= total, f"{chapter}: MathJax typeset {done} of {total} formulas"
        raw = browser.execute_script(
            "return Array.from(document.querySelectorAll('.math.notranslate')).filter(e => e.offsetParent !== null"
            " && /\\\\\\(|\\\\\\[/.test(e.textContent) && !e.querySelector('.MathJax, .MathJax_Display')).length")
        assert raw == 0, f"{chapter}: {raw} formulas still shown as TeX source"

    executed = browser.execute_script("return document.querySelectorAll('.cell_output').length") > 0
    if executed and "plt." in (ROOT / chapter).read_text(encoding="utf-8"):
        images = browser.execute_script(
            "return Array.from(document.querySelectorAll('.cell_output img')).map(i => i.complete && i.naturalWidth > 0)")
        assert images and all(images), f"{chapter}: figures missing or broken ({images})"

    colab = colab_link(REPO_URL, BRANCH, chapter.as_posix())
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href*='colab.research.google.com/github']")]
    assert links and all(link == colab for link in links), f"{chapter}: Colab links {links}, expected {colab}"

    notebook = nbformat.read(ROOT / chapter, as_version=4)
    answers = sum(1 for c in notebook.cells if (c.metadata.get("nbgrader") or {}).get("solution"))
    folded = browser.find_elements(By.CSS_SELECTOR, "details")
    assert len(folded) >= answers, f"{chapter}: {answers} solutions but {len(folded)} folded blocks"
    opened = [d for d in folded if d.get_attribute("open") is not None]
    assert not opened, f"{chapter}: {len(opened)} folded blocks open before a click"
    for details in folded:
        hidden = details.find_elements(By.XPATH, "./*[not(self::summary)]")
        assert not any(e.is_displayed() for e in hidden), f"{chapter}: a folded block's content is visible"

    errors = local_errors(browser, site_url)
    assert not errors, f"{chapter}: console errors:\n" + "\n".join(errors)

    if chapter == CHAPTERS[0]:
        shot = ROOT / "_build" / "site-screenshot.png"
        shot.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(shot))
