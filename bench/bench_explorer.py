"""How fast does the explorer answer? Prints a table (no assertions: timings belong here, not in tests).

Kernel side: one Sample click of the denoising explorer (record the run with n samples, project it,
build the figure widget, show the texts) and moves of the timestep slider -- to a step not shown before (whose texts
a lazy explorer decodes then) and back to one already shown -- for each pipeline:
the stand-in of tests/fake_pipeline.py, the tiny random pipeline, and the shipped default when present.
With --start: where a kernel's start goes (import, model load, data latents, first map, widget build), in a fresh
process each time, with an empty cache folder and then with the one the first start filled.
With --browser: in Chromium against `launch_explorer`, page-ready time after the server is ready (several loads), split
into the page's HTML (with the preheated kernel's widget state), the widgets on screen and the figure drawn; then the
Sample click (click -> texts and status updated; its status line says how long the kernel took) and the x̂0/z_t toggle.

    python bench/bench_explorer.py [--threads 1 2] [--repeats 5] [--start] [--browser [--model default] [--loads 3]]
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time
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


def kernel_side(threads, repeats, n, steps, sampler=None):
    import torch
    from ld4lg_edu.explorer import data_latents
    from ld4lg_edu.explorer_app import DenoisingExplorer
    torch.set_num_threads(threads)
    rows = []
    for name, pipe in pipelines():
        ex = DenoisingExplorer(pipe, data_latents(pipe, per_class=60, progress=False), n=n, steps=steps)
        if sampler:  # e.g. 'distilled': only the pipelines that offer it (the menu moves steps to a student's)
            if sampler not in dict(ex.sampler.options).values(): continue
            ex.sampler.value = sampler
            name = f"{name}, {sampler} {ex.steps.value} steps"
        ex.sample()  # warm-up
        clicks, records, new, shown = [], [], [], []
        for i in range(repeats):
            ex.seed.value = i
            start = time.perf_counter(); run = ex.sample()
            clicks.append(time.perf_counter() - start); records.append(run.seconds)
            k = ex.steps.value  # the run's steps (a student's own, with the distilled sampler)
            for step, times in ((k // 2, new), (k // 4, new), (k // 2, shown), (k, shown)):
                start = time.perf_counter(); ex.step_slider.value = step; times.append(time.perf_counter() - start)
        rows.append((name, threads, *map(statistics.median, (clicks, records, new, shown))))
    return rows


START = """
import json, sys, time
t = [time.perf_counter()]
import torch; torch.set_num_threads(1)
from ld4lg_edu.explorer import data_latents, default_cache_dir
from ld4lg_edu.explorer_app import ExplorerApp, load_explorer_pipeline
t.append(time.perf_counter())
pipe = load_explorer_pipeline(sys.argv[1]); t.append(time.perf_counter())
try: background = data_latents(pipe, per_class=60, progress=False, cache_dir=default_cache_dir())
except TypeError: background = data_latents(pipe, per_class=60, progress=False)  # a version keeping no latents on disk
t.append(time.perf_counter())
app = ExplorerApp(pipe, background); t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""


def kernel_start(model, cache):
    """Seconds of each part of what a kernel does before its page can be served, in a fresh process: import, load,
    latents, app."""
    env = {**os.environ, "LD4LG_CACHE": str(cache), "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", START, model], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def browser_side(repeats, model, loads=3, refill_after=5.0, kernel_threads=1, sampler=None):
    """In Chromium against `launch_explorer`: seconds from the server being ready (a kernel preheated with the model)
    to a page being usable, for `loads` page loads; then Sample clicks (click -> texts and status updated; with the
    kernel's own times from the status line: record_run, and the click done) and the x̂0/z_t toggle. `sampler`: the
    page's sampler menu is set to the option whose label starts with it (e.g. 'distilled') before the clicks."""
    from playwright.sync_api import sync_playwright
    from ld4lg_edu.explorer_app import launch_explorer
    start = time.perf_counter()
    server = launch_explorer(port=None, model=model, wait=False, refill_after=refill_after,
                             torch_threads=kernel_threads,
                             env={"PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])})
    up = time.perf_counter() - start
    ready, clicks, toggles, parts, kernel = [], [], [], [], []
    table = "() => { const t = document.querySelector('.ld4lg-texts table'); return t ? t.innerText : ''; }"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("LD4LG_CHROMIUM", "/usr/bin/chromium"),
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            for load in range(loads):
                deadline = time.monotonic() + 600        # the next preheated kernel is there: each writes a marker
                while len(list((server.workdir / "ready").glob("*"))) < load + 1 and time.monotonic() < deadline:
                    time.sleep(0.2)
                page = browser.new_page(viewport={"width": 1280, "height": 1300})
                start = time.perf_counter()
                page.goto(server.url, timeout=300_000)
                page.wait_for_selector(".ld4lg-sample", timeout=300_000)
                widgets = time.perf_counter() - start
                page.wait_for_selector(".js-plotly-plot .scatterlayer", timeout=300_000)
                ready.append(time.perf_counter() - start)
                nav = page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0]; "
                                    "const js = performance.getEntriesByType('resource')"
                                    ".filter(r => r.name.includes('.js')); "
                                    "return [n.responseStart / 1000, n.responseEnd / 1000, "
                                    "n.domContentLoadedEventEnd / 1000, "
                                    "n.transferSize, Math.max(0, ...js.map(r => r.responseEnd)) / 1000]; }")
                parts.append(dict(first_byte=nav[0], html=nav[1], dom=nav[2], html_kb=nav[3] / 1024, scripts=nav[4],
                                  widgets=widgets))
                if load < loads - 1: page.close()
            if sampler:
                labels = page.eval_on_selector_all(".ld4lg-sampler select option", "os => os.map(o => o.textContent)")
                page.select_option(".ld4lg-sampler select", label=next(x for x in labels if x.startswith(sampler)))
                page.wait_for_timeout(500)
            for i in range(repeats + 1):
                page.fill(".ld4lg-seed input", str(100 + i))           # a new seed: new texts
                page.press(".ld4lg-seed input", "Tab")
                page.wait_for_timeout(300)
                before = page.evaluate(table)
                start = time.perf_counter(); page.click(".ld4lg-sample")
                page.wait_for_function(f"() => ({table})() !== {json.dumps(before)} && "
                                       "document.querySelector('.ld4lg-status').innerText.includes('recorded in')",
                                       timeout=120_000)
                if i:  # the first click warms up
                    clicks.append(time.perf_counter() - start)
                    said = re.search(r"recorded in ([0-9.]+) s \(on screen after ([0-9.]+) s\)",
                                     page.inner_text(".ld4lg-status"))
                    if said: kernel.append(tuple(map(float, said.groups())))
                source = "z_t" if i % 2 == 0 else "x̂0"
                start = time.perf_counter(); page.click(f".ld4lg-source button:has-text('{source}')")
                shown = "z_t" if source == "z_t" else "x0"
                page.wait_for_function("() => document.querySelector('.ld4lg-texts table').dataset.source === "
                                       f"'{shown}'", timeout=120_000)
                toggles.append(time.perf_counter() - start)
            browser.close()
    finally: server.stop()
    return up, ready, clicks, toggles, parts, kernel


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2],
                    help="torch threads of the kernel-side rows (none: skip them)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--sampler",
                    help="kernel-side rows with this sampler (e.g. distilled); pipelines without it: skipped")
    ap.add_argument("--browser", action="store_true")
    ap.add_argument("--start", action="store_true", help="time a kernel's start (fresh process), cold and warm cache")
    ap.add_argument("--model", default="fake_pipeline:make_fake_pipeline",
                    help="model for the browser run ('default': the shipped one)")
    ap.add_argument("--loads", type=int, default=3, help="page loads timed in the browser run")
    ap.add_argument("--kernel-threads", type=int, default=1, help="torch threads of the served kernels (browser run)")
    ap.add_argument("--refill-after", type=float, default=5.0,
                    help="seconds after a page took the preheated kernel that the next starts")
    args = ap.parse_args()
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; n={args.n} samples, {args.steps} steps "
          f"(kernel-side rows; the page starts at explorer_app.page_steps), median of {args.repeats}")
    if args.threads:
        print("| pipeline | torch threads | Sample click (s) | of which record_run (s) "
              "| slider move to a new step (ms) | slider move to a step shown before (ms) |")
        print("|---|---|---|---|---|---|")
    for threads in args.threads:
        for name, t, click, record, new, shown in kernel_side(threads, args.repeats, args.n, args.steps,
                                                                  args.sampler):
            print(f"| {name} | {t} | {click:.3f} | {record:.3f} | {1000 * new:.1f} | {1000 * shown:.1f} |")
    if args.start:
        names = ("import explorer app", "load the model", "data latents (360)", "build the app (maps, widgets)")
        with tempfile.TemporaryDirectory() as cache:
            cold, warm = kernel_start(args.model, cache), kernel_start(args.model, cache)
        print(f"\n## a kernel's start, model {args.model} (fresh process; cache folder empty, then filled)")
        print("| part | empty cache (s) | filled cache (s) |\n|---|---|---|")
        for name, c, w in zip(names, cold, warm): print(f"| {name} | {c:.2f} | {w:.2f} |")
        print(f"| total | {sum(cold):.2f} | {sum(warm):.2f} |")
    if args.browser:
        up, ready, clicks, toggles, parts, kernel = browser_side(args.repeats, args.model, args.loads,
                                                                 args.refill_after, args.kernel_threads, args.sampler)
        print(f"\n## browser (Chromium), model {args.model}, kernels with {args.kernel_threads} torch thread(s), "
              "next kernel "
              f"heated {args.refill_after:g} s after a page took one")
        print(f"| measure | seconds |\n|---|---|\n| server started, a kernel preheated with the model | {up:.1f} |")
        print(f"| page usable after load (each of {len(ready)} loads) | {', '.join(f'{r:.1f}' for r in ready)} |")
        for key, what in (("first_byte",
                           "of which: the page's first byte (Voilà renders the preheated kernel's output)"),
                          ("html", "  the page's HTML received"), ("dom", "  the page parsed (DOMContentLoaded)"),
                          ("scripts", "  the last script received"),
                          ("widgets", "  the widgets on screen (Sample button)")):
            print(f"| {what} | {', '.join(f'{p[key]:.1f}' for p in parts)} |")
        sizes = ", ".join(f"{p['html_kb']:.0f}" for p in parts)
        print(f"| size of the page's HTML (kB) | {sizes} |")
        print(f"| Sample click with {args.n} samples -> texts and status on screen (median of {len(clicks)}) "
              f"| {statistics.median(clicks):.2f} |")
        if kernel:  # what the page's status line says: the kernel's record_run, and the kernel done with the click
            for i, what in enumerate(("of which the kernel's record_run (the status line's 'recorded in')",
                                      "the kernel done with the click (the status line's 'on screen after')")):
                print(f"|   {what} | {statistics.median(k[i] for k in kernel):.2f} |")
        print(f"| decode toggle x̂0 <-> z_t (median of {len(toggles)}) | {statistics.median(toggles):.2f} |")
    print(f"# load average at the end (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
