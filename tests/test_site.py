"""The course site (tools/build_site.py): which cells the notebook test runs, that a failing cell fails it, the link
check, plotly figures drawn as images, and the rendered pages in a real browser (Debian's Chromium via Playwright).

The browser test reads the site `python tools/build_site.py` wrote to `_site/html` (tools/test.sh builds it first and
sets LD4LG_SITE, so there a missing site is a failure); run alone without a site, it is skipped, saying so.
"""
import importlib.util, json, os, subprocess, sys, time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402

CHROMIUM = build_site.chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium)")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def code(src): return nbformat.v4.new_code_cell(src)


def test_skipped_cells_follow_the_test_flags():
    flags = build_site.skip_flags()
    assert {"slow", "gpu", "notest"} <= flags  # settings.ini's tst_flags
    skipped = [build_site.is_skipped(code(s), flags) for s in
               ("#| slow\n1/0", "#|gpu\nx", "#| export\n#| notest\nx", "#| eval: false\nx", "#| eval:false\nx",
                "nbdev_export()", "#| export\nx", "x = 1  #| slow", "# | slow\nx", "#| eval: true\nx")]
    assert skipped == [True, True, True, True, True, True, False, False, True, False]
    assert build_site.directives("#| export\n\n#| hide:\nx = 1\n#| slow") == {"export": "", "hide": ""}


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[code(s) for s in sources])
    nbformat.write(nb, path)
    return path


def test_execution_runs_unflagged_cells_and_stops_at_an_error(tmp_path):
    flags = sorted(build_site.skip_flags())
    good = _notebook(tmp_path / "good.ipynb", "import os; print(os.getcwd())", "#| slow\nraise SystemExit('never run')",
                     "print(6 * 7)")
    name, ok, _, error = build_site.execute_notebook(str(good), str(tmp_path / "good.out.ipynb"), flags, 120)
    assert (name, ok, error) == ("good.ipynb", True, "")
    cells = nbformat.read(tmp_path / "good.out.ipynb", as_version=4).cells
    assert cells[0].outputs[0]["text"].strip() == str(tmp_path)  # run in the notebook's own folder
    assert cells[1].outputs == [] and cells[2].outputs[0]["text"] == "42\n"
    bad = _notebook(tmp_path / "bad.ipynb", "x = 1", "raise ValueError('chapter broke here')", "print('after')")
    name, ok, _, error = build_site.execute_notebook(str(bad), str(tmp_path / "bad.out.ipynb"), flags, 120)
    assert not ok and "chapter broke here" in error
    cells = nbformat.read(tmp_path / "bad.out.ipynb", as_version=4).cells
    assert cells[2].outputs == []  # nothing ran after the error; the copy shows where it stopped


def test_a_reused_kernel_starts_each_notebook_afresh(tmp_path):
    "Notebooks sharing one kernel (as two workers do) see neither each other's variables nor each other's folder."
    flags = sorted(build_site.skip_flags())
    (tmp_path / "a").mkdir(); (tmp_path / "b").mkdir()
    first = _notebook(tmp_path / "a" / "first.ipynb", "secret = 42; import os; os.chdir('/')")
    second = _notebook(tmp_path / "b" / "second.ipynb", "import os; print(os.getcwd())", "print('secret' in dir())")
    km = build_site.start_kernel(tmp_path)
    try:
        assert build_site.execute_notebook(str(first), str(tmp_path / "1.ipynb"), flags, 120, km)[1]
        assert build_site.execute_notebook(str(second), str(tmp_path / "2.ipynb"), flags, 120, km)[1]
    finally: km.shutdown_kernel(now=True)
    cells = nbformat.read(tmp_path / "2.ipynb", as_version=4).cells
    assert [c.outputs[0]["text"].strip() for c in cells] == [str(tmp_path / "b"), "False"]


def _page(path, body):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><head></head><body>{body}</body></html>")


def test_link_check_finds_broken_links_missing_anchors_and_outside_resources(tmp_path):
    _page(tmp_path / "a.html", '<h1 id="top">A</h1><a href="b.html#part">b</a><img src="_images/f.png">'
                               '<a href="https://arxiv.org/abs/2212.09462">paper</a><a href="#top">up</a>')
    _page(tmp_path / "b.html", '<h2 id="part">B</h2><a href="a.html">a</a>')
    (tmp_path / "_images").mkdir(); (tmp_path / "_images" / "f.png").write_bytes(b"png")
    _page(tmp_path / "_static" / "macros.html", '<a href="{{ pathto(x) }}">template, not a page</a>')
    assert build_site.check_links(tmp_path) == []
    _page(tmp_path / "b.html", '<a href="a.html#nowhere">a</a><a href="c.html">c</a>'
                               '<script src="https://cdn.example.org/lib.js"></script>')
    problems = build_site.check_links(tmp_path)
    assert len(problems) == 4, problems  # the anchor a.html wanted in b.html is gone too
    assert any("no anchor #nowhere in a.html" in p for p in problems)
    assert any("broken link c.html" in p for p in problems)
    assert any("loads https://cdn.example.org/lib.js from outside" in p for p in problems)


def test_reader_view_hides_hidden_cells_and_directive_lines():
    nb = nbformat.v4.new_notebook(cells=[code("#| default_exp core"), code("#| hide\nimport secret"),
                                         code("#| export\ndef f(): pass"), nbformat.v4.new_markdown_cell("#| text")])
    build_site.reader_view(nb)
    assert [c.source for c in nb.cells] == ["def f(): pass", "#| text"]


@needs_chromium
def test_plotly_figures_become_images_and_widgets_go():
    import plotly.graph_objects as go
    figure = json.loads(go.Figure(go.Scatter(y=[1, 3, 2])).to_json())
    cell = code("fig")
    cell.outputs = [nbformat.v4.new_output("display_data", {build_site.PLOTLY_MIME: figure, "text/html": "<div>"}),
                    nbformat.v4.new_output("display_data", {build_site.WIDGET_MIME: {"model_id": "x"}, "text/plain": "b"})]
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"widgets": {"state": {}}})
    assert build_site.static_outputs([nb]) == 1
    (out,) = nb.cells[0].outputs
    import base64
    assert base64.b64decode(out["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n" and "text/html" not in out["data"]
    assert "widgets" not in nb.metadata


def _site():
    "The built site; under tools/test.sh, which builds it beside pytest, wait for that build to end first."
    site = Path(os.environ.get("LD4LG_SITE", ROOT / "_site" / "html"))
    stamp = os.environ.get("LD4LG_SITE_STAMP")
    if stamp:
        deadline = time.monotonic() + 3600
        while not Path(stamp).exists():
            if time.monotonic() > deadline: pytest.fail(f"the site build did not end within an hour ({stamp})")
            time.sleep(2)
        if not json.loads(Path(stamp).read_text())["ok"]:
            pytest.fail("tools/build_site.py failed (a chapter or a link): see _site/build.log")
    if not (site / "index.html").is_file():
        if os.environ.get("LD4LG_SITE"): pytest.fail(f"no site at {site}: python tools/build_site.py did not build it")
        pytest.skip("no built site: run python tools/build_site.py first")
    return site


@needs_chromium
@pytest.mark.browser
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="the playwright package is not installed")
def test_pages_show_their_figures_without_console_errors():
    from playwright.sync_api import sync_playwright
    site = _site()
    chapters = [p.stem for p in build_site.chapters() if p.stem != "index"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}"))
            page.goto((site / "index.html").as_uri(), wait_until="load")
            nav = [Path(h).stem for h in page.locator("nav.bd-links a.reference.internal").evaluate_all(
                "links => links.map(a => a.getAttribute('href'))")]
            assert [n for n in nav if n in chapters] == chapters, nav  # every chapter, in chapter order
            for name in ("04_noise_schedule", "09_evaluation"):  # a plotly figure and a matplotlib one
                page.goto((site / f"{name}.html").as_uri(), wait_until="load")
                figure = page.locator(".cell_output img").first
                figure.scroll_into_view_if_needed()
                assert figure.is_visible()
                width, height = figure.evaluate("img => [img.naturalWidth, img.getBoundingClientRect().height]")
                assert width > 200 and height > 100, (name, width, height)  # decoded and drawn, not a broken icon
                assert page.locator("mjx-container").count() > 0 or name != "04_noise_schedule"  # MathJax typeset
                if os.environ.get("LD4LG_SCREENSHOT_DIR"):
                    page.screenshot(path=str(Path(os.environ["LD4LG_SCREENSHOT_DIR"]) / f"site_{name}.png"))
            assert problems == []
        finally:
            browser.close()


def test_stored_outputs_are_the_listed_ones_and_current(tmp_path, monkeypatch):
    monkeypatch.setattr(build_site, "OUT", tmp_path / "site")
    monkeypatch.setattr(build_site, "KEPT", tmp_path / "kept_outputs.json")
    (tmp_path / "site" / "executed").mkdir(parents=True)
    stdout = lambda text: nbformat.v4.new_output("stream", name="stdout", text=text)
    cells = [code("print(1 + 1)"), code("print('noise')"), code("x = 3")]
    for c, i in zip(cells, ("a1", "b2", "c3")): c["id"] = i
    source = nbformat.v4.new_notebook(cells=cells)
    source.cells[0].outputs, source.cells[1].outputs = [stdout("3\n")], [stdout("noise\n")]
    nbformat.write(source, tmp_path / "ch.ipynb")
    fresh = nbformat.from_dict(json.loads(json.dumps(source)))
    fresh.cells[0].outputs = [stdout("2\n"), nbformat.v4.new_output("stream", name="stderr", text="a warning\n")]
    nbformat.write(fresh, tmp_path / "site" / "executed" / "ch.ipynb")
    build_site.KEPT.write_text(json.dumps({"ch": ["a1", "gone"]}))
    problems = build_site.check_kept([tmp_path / "ch.ipynb"])
    assert len(problems) == 2, problems  # (a listed cell that is gone is only noted)
    assert "cell a1: its stored output differs" in problems[0] and "cell b2 stores outputs" in problems[1]
    monkeypatch.setattr(build_site.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0))
    build_site.keep_outputs([tmp_path / "ch.ipynb"])
    stored = nbformat.read(tmp_path / "ch.ipynb", as_version=4)
    assert [c.source for c in stored.cells] == [c.source for c in source.cells]  # outputs only were touched
    assert [o["text"] for o in stored.cells[0].outputs] == ["2\n"]  # the warning is not stored
    left = build_site.check_kept([tmp_path / "ch.ipynb"])
    assert len(left) == 1 and "cell b2 stores outputs" in left[0], left
