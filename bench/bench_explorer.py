"""How fast does the explorer answer? Prints a table (no assertions: timings belong here, not in tests).

Kernel side: one Sample click of the denoising explorer (record the run with n samples, project it,
build the figure widget, show the texts) and one move of the timestep slider, for each pipeline:
the stand-in of tests/fake_pipeline.py, the tiny random pipeline, and the shipped default when present.
With --browser: in Chromium against `launch_explorer`, page-ready time after the server is ready (several loads),
the Sample click (click -> texts and status updated) and the x̂0/z_t toggle.

    python bench/bench_explorer.py [--threads 1 2] [--repeats 5] [--browser [--model default] [--loads 3]]
"""
import argparse, json, os, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def pipelines():
    from fake_pipeline import make_fake_pipeline
    from ld4lg_edu.data import load_corpus
    from ld4lg_edu.pipeline import load_default, tiny_pipeline
    yield "fake (tests/)", make_fake_pipeline()
    yield "tiny (random)", tiny_pipeline(label_names=load_corpus("wordnet").label_names)
    try: yield "default (shipped)", load_default()
    except FileNotFoundError as e: print(f"# default model skipped: {e}")


def kernel_side(threads, repeats, n, steps):
    import torch
    from ld4lg_edu.explorer import data_latents
    from ld4lg_edu.explorer_app import DenoisingExplorer
    torch.set_num_threads(threads)
    rows = []
    for name, pipe in pipelines():
        ex = DenoisingExplorer(pipe, data_latents(pipe, per_class=60, progress=False), n=n, steps=steps)
        ex.sample()  # warm-up
        clicks, records, moves = [], [], []
        for i in range(repeats):
            ex.seed.value = i
            start = time.perf_counter(); run = ex.sample(); clicks.append(time.perf_counter() - start); records.append(run.seconds)
            for step in (0, steps // 2, steps - 1):
                start = time.perf_counter(); ex.step_slider.value = step; moves.append(time.perf_counter() - start)
        rows.append((name, threads, statistics.median(clicks), statistics.median(records), statistics.median(moves)))
    return rows


def browser_side(repeats, model, loads=3):
    """In Chromium against `launch_explorer`: seconds from the server being ready (a kernel preheated with the model) to a page
    being usable, for `loads` page loads; then Sample clicks (click -> texts and status updated) and the x̂0/z_t toggle."""
    from playwright.sync_api import sync_playwright
    from ld4lg_edu.explorer_app import launch_explorer
    start = time.perf_counter()
    server = launch_explorer(port=None, model=model, wait=False, env={"PYTHONPATH": str(ROOT / "tests")})
    up = time.perf_counter() - start
    ready, clicks, toggles = [], [], []
    table = "() => { const t = document.querySelector('.ld4lg-texts table'); return t ? t.innerText : ''; }"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("LD4LG_CHROMIUM", "/usr/bin/chromium"),
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            for load in range(loads):
                deadline = time.monotonic() + 600                    # the next preheated kernel is there: each writes a marker
                while len(list((server.workdir / "ready").glob("*"))) < load + 1 and time.monotonic() < deadline: time.sleep(0.2)
                page = browser.new_page(viewport={"width": 1280, "height": 1300})
                start = time.perf_counter()
                page.goto(server.url, timeout=300_000)
                page.wait_for_selector(".ld4lg-sample", timeout=300_000)
                page.wait_for_selector(".js-plotly-plot .scatterlayer", timeout=300_000)
                ready.append(time.perf_counter() - start)
                if load < loads - 1: page.close()
            for i in range(repeats + 1):
                page.fill(".ld4lg-seed input", str(100 + i)); page.press(".ld4lg-seed input", "Tab")  # a new seed: new texts
                page.wait_for_timeout(300)
                before = page.evaluate(table)
                start = time.perf_counter(); page.click(".ld4lg-sample")
                page.wait_for_function(f"() => ({table})() !== {json.dumps(before)} && document.querySelector('.ld4lg-status').innerText.includes('recorded in')",
                                       timeout=120_000)
                if i: clicks.append(time.perf_counter() - start)  # the first click warms up
                source = "z_t" if i % 2 == 0 else "x̂0"
                start = time.perf_counter(); page.click(f".ld4lg-source button:has-text('{source}')")
                page.wait_for_function(f"() => document.querySelector('.ld4lg-texts table').dataset.source === '{'z_t' if source == 'z_t' else 'x0'}'", timeout=120_000)
                toggles.append(time.perf_counter() - start)
            browser.close()
    finally: server.stop()
    return up, ready, clicks, toggles


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--browser", action="store_true")
    ap.add_argument("--model", default="fake_pipeline:make_fake_pipeline", help="model for the browser run ('default': the shipped one)")
    ap.add_argument("--loads", type=int, default=3, help="page loads timed in the browser run")
    args = ap.parse_args()
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; n={args.n} samples, {args.steps} steps, median of {args.repeats}")
    print(f"| pipeline | torch threads | Sample click (s) | of which pipe.sample + decode (s) | slider move (ms) |")
    print(f"|---|---|---|---|---|")
    for threads in args.threads:
        for name, t, click, record, move in kernel_side(threads, args.repeats, args.n, args.steps):
            print(f"| {name} | {t} | {click:.3f} | {record:.3f} | {1000 * move:.1f} |")
    if args.browser:
        up, ready, clicks, toggles = browser_side(args.repeats, args.model, args.loads)
        print(f"\n## browser (Chromium), model {args.model}")
        print(f"| measure | seconds |\n|---|---|\n| server started, a kernel preheated with the model | {up:.1f} |")
        print(f"| page usable after load (each of {len(ready)} loads) | {', '.join(f'{r:.1f}' for r in ready)} |")
        print(f"| Sample click with {args.n} samples -> texts and status on screen (median of {len(clicks)}) | {statistics.median(clicks):.2f} |")
        print(f"| decode toggle x̂0 <-> z_t (median of {len(toggles)}; the first z_t of a run decodes S·n latents) | {statistics.median(toggles):.2f} |")
