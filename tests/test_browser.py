"""The page in a real browser: Playwright driving Debian's Chromium (headless) against the app launched in-process.

Skipped when /usr/bin/chromium or Playwright is missing (`apt-get install chromium`; never Playwright's own
browser download). Screenshots go to `out/browser/` (git-ignored), or to $PLAYGROUND_SCREENSHOTS.
"""
import os
import re
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

from playground import ui  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
CAT = re.compile(r"tabby|tiger cat|Egyptian cat")
SLOW = 90_000  # ms: an analysis on a busy 2-core machine


def shots() -> Path:
    d = Path(os.environ.get("PLAYGROUND_SCREENSHOTS") or Path(__file__).resolve().parent.parent / "out" / "browser")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def url(server):
    return server


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def external():
    """URLs the pages asked for beyond the app itself (the app must work offline)."""
    return []


def open_page(browser, address: str, external: list):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.on("request", lambda r: None if r.url.startswith((address.split("?")[0], "data:", "blob:"))
            else external.append(r.url))
    page.goto(address)
    return page


@pytest.fixture(scope="module")
def page(browser, url, external):
    page = open_page(browser, url, external)
    yield page
    page.close()


def test_starts_on_the_pretrained_backbone_and_predicts_a_cat(page, external):
    summary = page.locator("#summary")
    expect(summary).to_contain_text("EfficientNet-Lite0", timeout=SLOW)
    expect(summary).to_contain_text("4,652,008")
    page.get_by_role("tab", name="Predictions").click()
    page.locator("#photo input[type=file]").set_input_files(ui.sample_images()[0])
    expect(page.locator("#pred-md")).to_contain_text(CAT, timeout=SLOW)
    expect(page.locator("#pred-md")).to_contain_text("top-1 agrees")
    assert external == []


def test_se_resnet50_preset(page):
    page.locator("#preset input").click()
    page.get_by_role("option", name="SE-ResNet-50").click()
    expect(page.locator("#spec-yaml")).to_contain_text("layer*.*.bn3", timeout=SLOW)
    page.get_by_role("button", name="Analyze", exact=True).click()
    summary = page.locator("#summary")
    expect(summary).to_contain_text("28,088,024", timeout=SLOW)
    expect(summary).to_contain_text("28.09 M")
    expect(summary).to_contain_text("16 stitched modules")
    page.get_by_role("tab", name="Breakdown").click()
    expect(page.locator("#breakdown-plot .js-plotly-plot")).to_be_visible(timeout=SLOW)
    page.screenshot(path=str(shots() / "se_resnet50.png"), full_page=True)
    page.get_by_role("tab", name="Module tree").click()
    tree = page.locator("#tree")
    expect(tree).to_contain_text("SEModule")
    expect(tree.locator(".ln.ins").first).to_be_visible()  # highlighted


def test_shared_link_restores_the_spec(browser, url, external):
    spec = "backbone: resnet18\ninsert:\n  - {at: stage3, module: eca, args: {kernel_size: 5}}\n"
    page = open_page(browser, f"{url}?spec={ui.encode_spec(spec)}", external)
    try:
        expect(page.locator("#summary")).to_contain_text("resnet18", timeout=SLOW)
        expect(page.locator("#summary")).to_contain_text("1 stitched module")
        expect(page.locator("#summary")).to_contain_text("+5 ")  # a 5-tap ECA: five weights
        expect(page.locator("#spec-yaml")).to_contain_text("kernel_size: 5")
        expect(page.locator("#backbone input")).to_have_value("resnet18")
        page.screenshot(path=str(shots() / "shared_link.png"), full_page=True)
    finally:
        page.close()
    assert external == []
