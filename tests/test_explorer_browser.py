"""The explorer in a real browser: Debian's Chromium driven by Playwright's Python package.

`ld4lg explore` (or, before the CLI has that subcommand, `launch_explorer`) serves the app on 127.0.0.1
with the stand-in pipeline of tests/fake_pipeline.py; the test clicks Sample, checks that decoded text
appears, moves the timestep slider with the keyboard and checks the text changes, and saves a
screenshot. A second test opens a static figure written to HTML (no kernel, no server) and moves its
slider. Skipped, with the reason, when Chromium, Playwright or Voilà is missing.
"""
import importlib.util, json, os, re, secrets, shutil, signal, socket, subprocess, sys, time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
TESTS = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
MODEL = os.environ.get("LD4LG_BROWSER_MODEL", "fake_pipeline:make_fake_pipeline")


def chromium_path():
    "Debian's Chromium (or $LD4LG_CHROMIUM); Playwright's own browser download cannot work offline."
    for candidate in (os.environ.get("LD4LG_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists(): return candidate
    return None


def _skip_reason():
    if chromium_path() is None: return "Chromium is not installed (apt-get install -y chromium, or set LD4LG_CHROMIUM)"
    if importlib.util.find_spec("playwright") is None: return "the playwright Python package is not installed (pip install playwright)"
    if importlib.util.find_spec("voila") is None: return "voila is not installed (pip install voila)"
    return None


if _skip_reason(): pytestmark = [pytest.mark.browser, pytest.mark.skip(reason=_skip_reason())]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _serve_command(port):
    "`ld4lg explore` when the CLI has it, else the library function it calls."
    ld4lg = shutil.which("ld4lg")
    if ld4lg and subprocess.run([ld4lg, "explore", "--help"], capture_output=True, timeout=60).returncode == 0:
        return [ld4lg, "explore", "--port", str(port), "--model", MODEL]
    return [sys.executable, "-c", f"from ld4lg_edu.explorer_app import launch_explorer; launch_explorer(port={port}, model={MODEL!r})"]


def _cmdline(pid):
    try: return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError: return ""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`ld4lg explore` on the stand-in pipeline, its token in the environment; yields (url with the token, launcher process).
    At the end the launcher gets SIGTERM, as `kill PID` sends, and every process it started must be gone."""
    from ld4lg_edu.explorer_app import _alive, _process_tree
    port, log = _free_port(), tmp_path_factory.mktemp("server") / "launcher.log"
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "LD4LG_CACHE": str(tmp_path_factory.mktemp("cache")), "LD4LG_EXPLORER_TOKEN": token}
    with open(log, "wb") as out:
        process = subprocess.Popen(_serve_command(port), stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/?token={token}"
    try:
        deadline = time.monotonic() + 300
        while url not in log.read_text(errors="replace"):                # printed once a kernel is ready
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the explorer server did not start; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        assert all(token not in _cmdline(pid) for pid in _process_tree(process.pid)), "the token is on a command line"
        yield url, process
    finally:
        tree = _process_tree(process.pid)
        process.send_signal(signal.SIGTERM)
        try: process.wait(60)
        except subprocess.TimeoutExpired: process.kill()
        deadline = time.monotonic() + 20
        while _alive(tree) and time.monotonic() < deadline: time.sleep(0.25)
        left = {pid: _cmdline(pid) for pid in _alive(tree)}
        for pid in left: os.kill(pid, signal.SIGKILL)
        assert not left, f"SIGTERM to the launcher left these running: {left}"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _texts(page):
    "The texts shown in the explorer's step table, and its step."
    return page.evaluate("""() => {
        const table = document.querySelector('.ld4lg-texts table.ld4lg-steps');
        if (!table) return null;
        return {step: table.dataset.step, texts: [...table.querySelectorAll('td.ld4lg-text')].map(td => td.innerText)};
    }""")


def _open(browser, url, foreign):
    "A page of the explorer, its requests outside this machine recorded in `foreign`; returns (page, seconds until usable)."
    page = browser.new_page(viewport={"width": 1280, "height": 1500})
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else None)
    start = time.monotonic()
    page.goto(url, timeout=300_000)
    page.wait_for_selector(".ld4lg-sample", timeout=300_000)            # the app rendered: widgets are live
    page.wait_for_selector(".js-plotly-plot .scatterlayer", timeout=120_000)   # and so did the plotly figure
    return page, time.monotonic() - start


def _shot(page, name):
    if os.environ.get("LD4LG_SCREENSHOT_DIR"): page.screenshot(path=str(Path(os.environ["LD4LG_SCREENSHOT_DIR"]) / name), full_page=True)


def test_explorer_in_browser(served, browser, tmp_path):
    url, _ = served
    errors, foreign = [], []
    page, ready = _open(browser, url, foreign)
    page.on("pageerror", lambda e: errors.append(str(e)))
    print(f"page usable {ready:.1f} s after loading it")
    assert _texts(page) is None                                         # nothing sampled yet
    _shot(page, "explorer_opened.png")
    start = time.monotonic()
    page.click(".ld4lg-sample")
    page.wait_for_function("() => document.querySelector('.ld4lg-status').innerText.includes('recorded in')", timeout=60_000)
    print(f"Sample (4 samples) on screen {time.monotonic() - start:.1f} s after the click")
    final = _texts(page)
    assert len(final["texts"]) == 4 and all(t.strip() for t in final["texts"]), final
    final_step = int(final["step"])
    page.focus(".ld4lg-step-slider .noUi-handle")                        # the timestep slider, by keyboard, as a user would
    page.keyboard.press("Home")
    page.wait_for_function(f"() => document.querySelector('.ld4lg-texts table.ld4lg-steps').dataset.step !== '{final_step}'", timeout=30_000)
    first = _texts(page)
    assert int(first["step"]) < final_step and first["texts"] != final["texts"], "the text at an early step should differ from the final text"
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => document.querySelector('.ld4lg-texts table.ld4lg-steps').dataset.step === '{int(first['step']) + 1}'", timeout=30_000)
    x0_texts = _texts(page)["texts"]
    page.click(".ld4lg-source button:has-text('z_t')")                  # decode the noisy latent itself
    page.wait_for_function("() => document.querySelector('.ld4lg-texts table.ld4lg-steps').dataset.source === 'z_t'", timeout=30_000)
    noisy = _texts(page)
    assert noisy["texts"] != x0_texts and "decoded from z_t" in page.inner_text(".ld4lg-caption")
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    _shot(page, "explorer.png")
    assert not errors, errors
    assert not foreign, f"the page asked the network for {foreign}"
    page.close()


def _figure(page):
    "The plotly figure on the page: {trace name: x values}, and its title."
    return page.evaluate("""() => {
        const gd = document.querySelector('.js-plotly-plot');
        return {title: gd.layout.title.text, x: Object.fromEntries(gd.data.map(t => [t.name, Array.from(t.x)]))};
    }""")


def test_a_second_sample_moves_the_runs_traces_and_keeps_the_data_latents(served, browser):
    """The second run reaches the figure as an update of the traces on the page: the run's move, the data latents
    stay as they are."""
    url, _ = served
    errors = []
    page, _ = _open(browser, url, [])
    page.on("pageerror", lambda e: errors.append(str(e)))
    runs = []
    for seed in ("1", "2"):
        page.fill(".ld4lg-seed input", seed); page.press(".ld4lg-seed input", "Tab")
        page.wait_for_timeout(300)
        page.click(".ld4lg-sample")
        page.wait_for_function(f"() => document.querySelector('.ld4lg-status').innerText.includes('recorded in') && "
                               f"document.querySelector('.js-plotly-plot').layout.title.text.includes('4 samples')",
                               timeout=60_000)
        page.wait_for_timeout(500)                                      # plotly has drawn the update
        runs.append((_texts(page)["texts"], _figure(page)))
        if seed == "1":  # the page's trace objects of the first run
            page.evaluate("() => { window.ld4lgTraces = new WeakSet(document.querySelector('.js-plotly-plot').data); }")
    (texts1, fig1), (texts2, fig2) = runs
    # changed in place (one update), not deleted and added again
    assert page.evaluate("() => document.querySelector('.js-plotly-plot').data.every(t => window.ld4lgTraces.has(t))")
    assert texts1 != texts2 and list(fig1["x"]) == list(fig2["x"])    # new texts; the same traces, in the same order
    data = [name for name in fig1["x"] if name.startswith("data: ")]
    assert data and all(fig1["x"][name] == fig2["x"][name] for name in data)
    assert fig1["x"]["z_t now"] != fig2["x"]["z_t now"]
    assert len(fig2["x"]["sample 1: z_t"]) == int(_texts(page)["step"]) + 1    # the path up to the step shown
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() == len(fig2["x"])
    assert not errors, errors
    page.close()


def _with_steps_out_of_range(frame: bytes) -> bytes:
    "A v1 frame from the page; if it moves the steps slider to its end (100), raise the slider's max and its value to 3000."
    from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1
    channel, parts = deserialize_msg_from_ws_v1(frame)
    if json.loads(parts[0]).get("msg_type") != "comm_msg": return frame
    content = json.loads(parts[3])
    state = content.get("data", {}).get("state", {})
    if content["data"].get("method") != "update" or state.get("value") != 100: return frame
    state.update(max=5000, value=3000)
    return serialize_msg_to_ws_v1([parts[0], parts[1], parts[2], json.dumps(content).encode(), *parts[4:]], channel)


def test_an_out_of_range_value_from_the_page_is_refused_and_the_app_keeps_working(served, browser):
    "A client can send any widget value (here: steps = 3000, the slider's max raised too): the page says why, and sampling still works."
    from ld4lg_edu.explorer_app import _process_tree
    url, launcher = served
    def tamper(route):
        server = route.connect_to_server()
        route.on_message(lambda m: server.send(_with_steps_out_of_range(m) if isinstance(m, bytes) else m))
        server.on_message(lambda m: route.send(m))
    foreign, kernels = [], []
    page = browser.new_page(viewport={"width": 1280, "height": 1500})
    page.route_web_socket(re.compile(r".*/api/kernels/.*/channels.*"), tamper)
    page.on("websocket", lambda ws: kernels.append(re.search(r"/api/kernels/([0-9a-f-]{36})/", ws.url).group(1)))
    page.goto(url, timeout=300_000)
    page.wait_for_selector(".ld4lg-sample", timeout=300_000)
    page.focus(".ld4lg-steps .noUi-handle")
    page.keyboard.press("End")                                          # steps = 100, sent on as 3000
    page.click(".ld4lg-sample")
    page.wait_for_function("() => document.querySelector('.ld4lg-status').innerText.includes('outside 1..100')", timeout=60_000)
    assert "steps = 3000" in page.inner_text(".ld4lg-status")
    _shot(page, "explorer_out_of_range.png")
    page.focus(".ld4lg-steps .noUi-handle")
    page.keyboard.press("Home")                                         # back in range: steps = 1
    page.click(".ld4lg-sample")
    page.wait_for_function("() => document.querySelector('.ld4lg-status').innerText.includes('recorded in')", timeout=60_000)
    assert "× 1 steps" in page.inner_text(".ld4lg-status") and len(_texts(page)["texts"]) == 4
    page.close()                                                        # the page goes away: so does its kernel
    deadline = time.monotonic() + 60
    def running(): return [k for k in kernels if any(k in _cmdline(pid) for pid in _process_tree(launcher.pid))]
    while running() and time.monotonic() < deadline: time.sleep(0.5)
    assert kernels and not running(), f"the kernel of a closed page still runs: {running()}"


def test_cancel_stops_a_long_run_and_the_app_keeps_working(served, browser):
    "A long Sample shows its progress; Cancel stops it between steps, the status says so, and the next Sample works."
    url, _ = served
    page, _ = _open(browser, url, [])
    page.focus(".ld4lg-steps .noUi-handle")
    page.keyboard.press("End")                                          # 100 steps: the stand-in sleeps at each one
    page.click(".ld4lg-sample")
    page.wait_for_function("() => document.querySelector('.ld4lg-status').innerText.includes('sampling: step')", timeout=60_000)
    assert page.is_visible(".ld4lg-cancel")
    page.click(".ld4lg-cancel")
    page.wait_for_function("() => document.querySelector('.ld4lg-status').innerText.includes('cancelled')", timeout=60_000)
    assert "nothing sampled yet" in page.inner_text(".ld4lg-status") and _texts(page) is None   # true to the screen
    page.wait_for_selector(".ld4lg-cancel", state="hidden", timeout=30_000)
    page.focus(".ld4lg-steps .noUi-handle")
    page.keyboard.press("Home")                                         # 1 step: quick
    page.click(".ld4lg-sample")
    page.wait_for_function("() => document.querySelector('.ld4lg-status').innerText.includes('recorded in')", timeout=60_000)
    assert "× 1 steps" in page.inner_text(".ld4lg-status") and len(_texts(page)["texts"]) == 4
    page.close()


def test_static_figure_without_kernel(browser, tmp_path):
    "A trajectory figure written to a self-contained HTML file animates in the browser with no Python behind it."
    sys.path.insert(0, str(TESTS))
    from fake_pipeline import FakePipeline
    from ld4lg_edu.explorer import fit_projection, record_run, trajectory_figure
    pipe = FakePipeline()
    run = record_run(pipe, n=2, label="plant", guidance_scale=2.0, steps=6, seed=1)
    background = pipe.encode(["plant tree leaf"] * 3 + ["dog horse bird"] * 3 + ["city town river"] * 3)
    fig = trajectory_figure(run, fit_projection(background, "pca"))
    path = tmp_path / "trajectory.html"
    fig.write_html(path, include_plotlyjs=True, auto_play=False)   # plotly.js inlined: no network needed
    page = browser.new_page()
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot .slider-container", timeout=30_000)
    def ring_x(): return page.evaluate("() => { const gd = document.querySelector('.js-plotly-plot'); return Array.from(gd._fullData.find(t => t.name === 'z_t now').x); }")
    at_end = ring_x()
    page.evaluate("() => { const gd = document.querySelector('.js-plotly-plot'); return Plotly.animate(gd, ['1'], {frame: {duration: 0, redraw: true}, transition: {duration: 0}}); }")
    at_start = ring_x()
    frame = fig.frames[0]
    expected = frame.data[[fig.data[i].name for i in frame.traces].index("z_t now")].x
    assert at_start == pytest.approx(list(expected)) and at_start != pytest.approx(at_end)
    page.close()
