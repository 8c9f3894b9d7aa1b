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


# ---- the page keeps the user's work (one test per bug a new user hit)

CUSTOM = "title: mine\nbackbone: resnet18\nimg_size: 64\ninsert:\n  - {at: stage2, module: eca}\n"


@pytest.fixture
def fresh(browser, url, external):
    """A new page (its own session and history) with the default report shown."""
    page = open_page(browser, url, external)
    expect(page.locator("#summary")).to_contain_text("EfficientNet-Lite0", timeout=SLOW)
    yield page
    page.close()


def set_yaml(page, text: str) -> None:
    """Replace the YAML editor's text as a user would (select all, type); wait until the status line took it."""
    page.locator("#spec-yaml .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    expect(page.locator("#status-line")).to_contain_text("parsed", timeout=SLOW)


def yaml_text(page) -> str:
    return page.locator("#spec-yaml .cm-content").inner_text()


def toasts(page):
    return page.locator(".toast-body")


def test_preset_focus_then_blur_keeps_a_custom_spec(fresh):
    set_yaml(fresh, CUSTOM)
    fresh.locator("#preset input").click()  # focus the menu, then leave it: by a click elsewhere, then by Tab
    fresh.locator(".pg-header h1").click()
    fresh.locator("#preset input").click()
    fresh.keyboard.press("Tab")
    fresh.get_by_role("button", name="Analyze", exact=True).click()
    expect(fresh.locator("#summary")).to_contain_text("mine", timeout=SLOW)
    assert "title: mine" in yaml_text(fresh) and "eca" in yaml_text(fresh)
    expect(fresh.locator("#preset input")).to_have_value("— custom spec —")


def test_undo_restores_a_custom_spec_after_a_preset_pick(fresh):
    set_yaml(fresh, CUSTOM)
    fresh.locator("#preset input").click()
    fresh.get_by_role("option", name="SE-ResNet-50").click()
    expect(fresh.locator("#spec-yaml")).to_contain_text("layer*.*.bn3", timeout=SLOW)
    fresh.locator("#undo").click()
    expect(fresh.locator("#spec-yaml")).to_contain_text("title: mine", timeout=SLOW)
    expect(fresh.locator("#backbone input")).to_have_value("resnet18")
    fresh.locator("#redo").click()
    expect(fresh.locator("#spec-yaml")).to_contain_text("layer*.*.bn3", timeout=SLOW)


def test_enter_on_an_exact_point_name_picks_that_point(fresh):
    set_yaml(fresh, "backbone: resnet18\nimg_size: 64\n")
    at = fresh.locator("#at input")
    expect(fresh.locator("#at input")).to_have_value(re.compile("stage4"), timeout=SLOW)  # the menu follows
    at.click()
    at.fill("stage3")
    fresh.keyboard.press("Enter")
    fresh.locator("#add-insert").click()
    expect(fresh.locator("#spec-yaml")).to_contain_text("at: stage3,", timeout=SLOW)
    assert "stage3.block1" not in yaml_text(fresh)


def test_messages_show_angle_brackets_verbatim(fresh):
    fresh.get_by_role("tab", name="Compare").click()
    editor = fresh.locator("#cmp-b .cm-content")
    editor.click()
    fresh.keyboard.press("Control+A")
    fresh.keyboard.insert_text("backbone: resnet18\nimg_size: 64\ninsert:\n  - {at: zzz, module: se}\n")
    fresh.locator("#compare-run").click()
    expect(toasts(fresh)).to_contain_text("stage<i>.block<j>", timeout=SLOW)


def test_a_bad_upload_gives_one_message_and_clears_the_old_predictions(fresh, tmp_path):
    fresh.get_by_role("tab", name="Predictions").click()
    fresh.locator("#photo input[type=file]").set_input_files(ui.sample_images()[0])
    expect(fresh.locator("#pred-md")).to_contain_text(CAT, timeout=SLOW)
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is not a PNG")
    fresh.locator("#photo input[type=file]").set_input_files(str(bad))
    expect(toasts(fresh)).to_have_count(1, timeout=SLOW)
    expect(toasts(fresh)).to_contain_text("holiday.png")
    fresh.wait_for_timeout(1500)  # a second message would come within this
    expect(toasts(fresh)).to_have_count(1)
    expect(fresh.locator("#pred-md")).not_to_contain_text(CAT)


def test_a_failed_analyze_marks_the_old_report_stale(fresh):
    set_yaml(fresh, "backbone: resnet18\nimg_size: 64\ninsert:\n  - {at: stage9, module: se}\n")
    expect(fresh.locator("#status-line")).to_contain_text("not built yet")
    fresh.get_by_role("button", name="Analyze", exact=True).click()
    expect(fresh.locator("#report-state")).to_contain_text("stale", timeout=SLOW)
    expect(fresh.locator("#report-state")).to_contain_text("stages 1 to 4")
    expect(fresh.locator("#status-line")).to_contain_text("does not build")
    assert float(fresh.locator("#summary").evaluate("e => getComputedStyle(e).opacity")) < 1  # dimmed
    set_yaml(fresh, "backbone: resnet18\nimg_size: 64\n")
    fresh.keyboard.press("Control+Enter")  # the shortcut runs Analyze
    expect(fresh.locator("#summary")).to_contain_text("resnet18", timeout=SLOW)
    expect(fresh.locator("#report-state")).to_be_empty()
    expect(fresh.locator("#status-line")).to_contain_text("built")


def test_a_refused_stride_offers_the_image_size_where_it_works(fresh):
    """DLA at 224 px cannot take a stride-4 stem (its last level would be 3.5 pixels wide); the refusal finds that
    256 px works, and one click sets it (an undoable step) and analyses."""
    set_yaml(fresh, "backbone: dla46x_c\nstem: {stride: 4}\n")
    fit = fresh.locator("#use-fitting-size")
    expect(fit).to_be_hidden()
    fresh.get_by_role("button", name="Analyze", exact=True).click()
    expect(fresh.locator("#status-line")).to_contain_text("stride 4 fits at img_size 256", timeout=SLOW)
    expect(fit).to_have_text("Use img_size 256 and analyze")
    fit.click()
    expect(fresh.locator("#summary")).to_contain_text("dla46x_c · 256×256", timeout=SLOW)
    expect(fresh.locator("#spec-yaml")).to_contain_text("img_size: 256")
    expect(fresh.locator("#report-state")).to_be_empty()
    expect(fit).to_be_hidden()
    fresh.get_by_role("button", name="Undo").click()
    expect(fresh.locator("#spec-yaml")).not_to_contain_text("img_size")


def test_switching_backbone_never_fails_on_the_pretrained_box(fresh):
    expect(fresh.locator("#pretrained input")).to_be_checked()
    backbone = fresh.locator("#backbone input")
    backbone.click()
    backbone.fill("vit_tiny_patch16_224")
    fresh.keyboard.press("Enter")
    expect(fresh.locator("#spec-yaml")).to_contain_text("vit_tiny_patch16_224", timeout=SLOW)
    if not fresh.locator("#pretrained input").is_checked():  # no weights here: unticked, and the page says why
        expect(fresh.locator("#status")).to_contain_text("pretrained unticked")
        expect(fresh.locator("#spec-yaml")).not_to_contain_text("pretrained: true")
    fresh.get_by_role("button", name="Analyze", exact=True).click()
    expect(fresh.locator("#summary")).to_contain_text("vit_tiny_patch16_224", timeout=SLOW)
    expect(fresh.locator("#report-state")).to_be_empty()


CLIPPED = """(sel) => [...document.querySelectorAll(sel)].filter((e) => e.offsetParent !== null).map((e) => {
  const box = e.getBoundingClientRect(), parent = e.parentElement.getBoundingClientRect();
  return {sel, text: e.innerText.slice(0, 40), over: Math.max(box.right - parent.right, e.scrollWidth - e.clientWidth)};
}).filter((x) => x.over > 1)"""


def test_nothing_is_clipped_at_1280x720(browser, url, external):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        page.goto(url)
        expect(page.locator("#summary")).to_contain_text("EfficientNet-Lite0", timeout=SLOW)
        page.locator("#preset input").click()
        page.get_by_role("option", name="SE-ResNet-50").click()
        page.get_by_role("button", name="Analyze", exact=True).click()
        expect(page.locator("#summary")).to_contain_text("28,088,024", timeout=SLOW)
        page.get_by_text("Module catalog").click()
        bad = []
        for sel in (".pg-card > div", ".pg-title", "#inserts table", ".pg-catalog", "#status-line"):
            bad += page.evaluate(CLIPPED, sel)
        page.get_by_role("tab", name="Compare").click()
        page.locator("#cmp-a .cm-content").click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text("title: A spec with a very long title that used to widen the first column a lot\n"
                                  "backbone: resnet18\nimg_size: 64\n")
        page.locator("#compare-run").click()
        expect(page.locator("#cmp-totals")).to_contain_text("B − A", timeout=SLOW)
        for sel in (".pg-compare", ".pg-compare td"):
            bad += page.evaluate(CLIPPED, sel)
        right = page.evaluate("() => Math.max(...[...document.querySelectorAll('.pg-compare th')]"
                              ".map((e) => e.getBoundingClientRect().right))")
        page.screenshot(path=str(shots() / "compare_1280.png"), full_page=True)
        assert bad == [] and right <= 1280
    finally:
        page.close()


def test_on_a_phone_the_summary_follows_the_analyze_button(browser, url, external):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(url)
        expect(page.locator("#summary")).to_contain_text("EfficientNet-Lite0", timeout=SLOW)
        button = page.locator("#analyze").bounding_box()
        cards = page.locator(".pg-cards").bounding_box()
        page.screenshot(path=str(shots() / "phone.png"), full_page=True)
        assert button["y"] + button["height"] <= cards["y"] < button["y"] + 400
    finally:
        page.close()


def test_show_in_tree_and_the_base_column_of_shapes(fresh):
    set_yaml(fresh, "backbone: resnet18\nimg_size: 64\nstem: {stride: 4}\ninsert:\n  - {at: stage3, module: se}\n")
    fresh.get_by_role("button", name="Analyze", exact=True).click()
    expect(fresh.locator("#summary")).to_contain_text("1 stitched module", timeout=SLOW)
    fresh.get_by_role("tab", name="Shapes").click()
    expect(fresh.locator("#shapes-table")).to_contain_text("≠")  # the stem stride changed the maps
    fresh.get_by_role("tab", name="Breakdown").click()
    fresh.locator(".pg-goto").first.click()
    line = fresh.locator('#tree [data-path="layer3_after.0"]')
    expect(line).to_be_visible(timeout=SLOW)
    expect(line).to_be_in_viewport()


# ---- the Sweep tab (issue 15)

SWEEP = ("base: {backbone: resnet18, img_size: 64, insert: [{at: stage4, module: se}]}\n"
         "axes:\n  insert[0].module: [se, eca]\n  insert[0].at: [stage3, stage4, stage9]\n")


def test_sweep_tab_runs_shows_the_front_and_opens_a_variant(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_SWEEP_CACHE", str(tmp_path))  # the server runs in this process: computed afresh
    fresh.get_by_role("tab", name="Sweep").click()
    editor = fresh.locator("#sweep-yaml .cm-content")
    editor.click()
    fresh.keyboard.press("Control+A")
    fresh.keyboard.insert_text(SWEEP)
    expect(fresh.locator("#sweep-count")).to_contain_text("6 variants: insert[0].module (2) x insert[0].at (3)",
                                                          timeout=SLOW)
    fresh.locator("#sweep-run").click()
    summary = fresh.locator("#sweep-summary")
    expect(summary).to_contain_text("6 variants: 6 computed, 0 from the cache, 2 invalid", timeout=SLOW)
    expect(fresh.locator("#sweep-plot .js-plotly-plot")).to_be_visible(timeout=SLOW)
    expect(fresh.locator("#sweep-plot")).to_contain_text("Pareto front")  # the front's trace, in the legend
    table = fresh.locator("#sweep-table")
    expect(table).to_contain_text("this backbone has stages 1 to 4")  # invalid variants, with their reasons
    expect(table).to_contain_text("module=se · at=stage4")
    fresh.screenshot(path=str(shots() / "sweep.png"), full_page=True)

    where = fresh.locator("#sweep-where textarea")
    where.fill("params_delta <= 10")
    where.press("Enter")
    expect(summary).to_contain_text("where params_delta <= 10", timeout=SLOW)
    expect(table).not_to_contain_text("module=se · at=stage4")  # the constraint filters the table
    expect(fresh.locator("#sweep-variant input")).to_have_value(re.compile("module=eca · at=stage3"))  # the front
    expect(fresh.locator("#sweep-variant-yaml")).to_contain_text("module: eca")

    fresh.locator("#sweep-open").click()
    expect(fresh.locator("#spec-yaml")).to_contain_text("{at: stage3, module: eca}", timeout=SLOW)
    expect(fresh.locator("#summary")).to_contain_text("resnet18", timeout=SLOW)
    expect(fresh.locator("#summary")).to_contain_text("1 stitched module")
    expect(fresh.locator("#backbone input")).to_be_visible()  # the Playground tab is shown
