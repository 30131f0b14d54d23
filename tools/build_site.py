"""Build the course site: every chapter executed once on CPU, then rendered to static HTML pages.

    python tools/build_site.py                     # execute nbs/*.ipynb, render _site/html, check every link
    python tools/build_site.py --only 04_noise_schedule 07_samplers   # a few chapters (a quick look)
    python tools/build_site.py --no-render         # the notebook test alone
    python tools/build_site.py --render-only       # render again from the executed copies in _site/executed
    python tools/build_site.py --nbs DIR --no-render --out OUT   # run the chapters of a copy (`ld4lg course`) into OUT

The execution is the notebook test (it replaces `nbdev_test`'s run): one Jupyter kernel per notebook, two side by
side, cells flagged with a `tst_flags` flag of settings.ini (`#| slow`, `#| gpu`, `#| notest`) or `#| eval: false`
skipped, the working directory `nbs/`. A failing cell fails the build, and the executed copies in `_site/executed/`
show where. The site is rendered from those copies by Sphinx with MyST-NB (execution off, so nothing runs twice):
plotly figures become PNG images through kaleido and Chromium, matplotlib figures are PNG already, and MathJax is
served from the site itself, so the pages work offline. Every local link and resource of every page is checked.
"""
from __future__ import annotations
import argparse, base64, configparser, json, multiprocessing, os, queue, re, shutil, signal, subprocess, sys, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
NBS, DOCS, OUT = ROOT / "nbs", ROOT / "docs", ROOT / "_site"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
KEPT = DOCS / "kept_outputs.json"
STAMP = OUT / "site.json"


def skip_flags() -> set[str]:
    "The `tst_flags` of settings.ini: cells carrying one of them are not run by the notebook test."
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    return set(cfg["DEFAULT"].get("tst_flags", "").split())


_DIRECTIVE = re.compile(r"^\s*#\s*\|")


def directives(source: str) -> dict[str, str]:
    "The `#| key value` lines at the top of a cell, read as nbdev reads them: {'slow': '', 'eval:': 'false'}."
    found = {}
    for line in source.splitlines():
        if not line.strip() or line.lstrip().startswith("%%"): continue
        if not _DIRECTIVE.match(line): break
        words = _DIRECTIVE.sub("", line).strip().rstrip(":").replace(":", ": ").split()
        if words: found[words[0]] = " ".join(words[1:])
    return found


def is_skipped(cell, flags: set[str]) -> bool:
    "Whether the notebook test leaves this cell unrun (nbdev_test's rule: a skip flag, `eval: false`, nbdev_export)."
    if cell.cell_type != "code": return True
    found = directives(cell.source)
    return bool(flags & found.keys()) or found.get("eval:", "").lower() == "false" or "nbdev_export(" in cell.source


KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]  # not the kernel's notice about TCP, twice per notebook
# Between two notebooks on one kernel: a fresh namespace and working directory (modules stay imported, as in nbdev_test)
RESET = "%reset -f\nimport os as _os, sys as _sys\n_os.chdir({folder!r})\n" \
        "if 'matplotlib.pyplot' in _sys.modules: _sys.modules['matplotlib.pyplot'].close('all')\ndel _os, _sys"


def start_kernel(folder: Path | None = None):
    "A Python kernel (this interpreter's) working in `folder` (default: nbs/)."
    from jupyter_client.manager import KernelManager
    km = KernelManager(kernel_name="python3")
    km.start_kernel(extra_arguments=KERNEL_ARGS, cwd=str(folder or NBS))
    return km


def reset_kernel(km, folder: Path, timeout: int = 120) -> None:
    "Clear the kernel's namespace and move it to `folder`, ready for the next notebook."
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=timeout)
        reply = kc.execute_interactive(RESET.format(folder=str(folder)), timeout=timeout, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok": raise RuntimeError(f"resetting the kernel failed: {reply['content']}")
    finally: kc.stop_channels()


def execute_notebook(src: str, dest: str, flags: list[str], timeout: int, km=None) -> tuple[str, bool, float, str]:
    """Run one notebook (working directory: its folder) and write the executed copy to `dest`; `km`: a running kernel
    to reuse (its namespace is cleared first), else a fresh kernel that is shut down after."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    class SkippingClient(NotebookClient):
        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            if is_skipped(cell, set(flags)): return cell
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    src, dest = Path(src), Path(dest)
    nb = nbformat.read(src, as_version=4)
    start, error = time.monotonic(), ""
    try:
        if km is not None: reset_kernel(km, src.parent)
        client = SkippingClient(nb, km=km, kernel_name="python3", timeout=timeout, extra_arguments=KERNEL_ARGS,
                                resources={"metadata": {"path": str(src.parent)}})
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e: error = str(e)
    except Exception as e: error = f"the notebook runner failed: {type(e).__name__}: {e}"  # a failure, not a crash
    tmp = dest.with_name(f".{dest.name}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, dest)  # a failed run is kept too: it shows where the chapter broke
    return src.name, not error, time.monotonic() - start, error


def _worker(tasks, results, flags: list[str], timeout: int) -> None:
    "Run the notebooks taken from `tasks` in turn on one kernel (a new one after a notebook kills it)."
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still shut the kernel down
    km = None
    try:
        while (task := tasks.get()) is not None:
            if km is None or not km.is_alive():
                if km is not None: km.shutdown_kernel(now=True)
                km = start_kernel()
            results.put(execute_notebook(*task, flags, timeout, km))
    finally:
        if km is not None: km.shutdown_kernel(now=True)


def chapters(only: list[str] | None = None) -> list[Path]:
    "The notebooks of nbs/ in chapter (file name) order, or the ones named in `only` (with or without .ipynb)."
    found = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))
    if only:
        wanted = {Path(o).stem for o in only}
        missing = wanted - {p.stem for p in found}
        if missing: raise SystemExit(f"build_site: no notebook named {', '.join(sorted(missing))} in nbs/")
        found = [p for p in found if p.stem in wanted]
    return found


def execute_all(notebooks: list[Path], workers: int, timeout: int) -> bool:
    "Execute the notebooks, `workers` kernels side by side, the slowest first (as the previous run timed them)."
    executed = OUT / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    timings_file = OUT / "timings.json"
    previous = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    order = sorted(notebooks, key=lambda p: -previous.get(p.name, 0.0))
    os.environ.update(OFFLINE_ENV, PLOTLY_RENDERER="plotly_mimetype")  # the kernels inherit this environment
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # two kernels on two cores: one torch thread each
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend keeps matplotlib figures as PNG outputs
    flags = sorted(skip_flags())
    print(f"== executing {len(order)} notebooks ({workers} at a time; skipped cells: {', '.join(flags)}, eval: false)",
          flush=True)
    ctx = multiprocessing.get_context("spawn")
    tasks, replies = ctx.Queue(), ctx.Queue()
    for p in order: tasks.put((str(p), str(executed / p.name)))
    for _ in range(workers): tasks.put(None)
    procs = [ctx.Process(target=_worker, args=(tasks, replies, flags, timeout)) for _ in range(workers)]
    for proc in procs: proc.start()
    results = []
    try:
        while len(results) < len(order):
            try: name, ok, seconds, error = replies.get(timeout=10)
            except queue.Empty:
                if any(proc.is_alive() for proc in procs): continue
                raise RuntimeError("the notebook workers stopped before every notebook ran") from None
            results.append((name, ok, seconds))
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {seconds:.0f} s", flush=True)
            if error: print(error[-6000:], file=sys.stderr, flush=True)
    finally:
        for proc in procs:
            if len(results) < len(order): proc.terminate()  # stopped early: the workers shut their kernels down
            proc.join(timeout=60)
    timings_file.write_text(json.dumps({**previous, **{n: s for n, _, s in results}}, indent=1))
    failed = [n for n, ok, _ in results if not ok]
    if failed: print(f"FAIL: these notebooks stopped at an error: {', '.join(failed)} (executed copies in {executed})")
    return not failed


def chromium() -> str | None:
    "Debian's Chromium (or $LD4LG_CHROMIUM): kaleido draws plotly figures with it, the site's browser test uses it."
    for candidate in (os.environ.get("LD4LG_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists(): return candidate
    return None


def kept_cells() -> dict[str, list[str]]:
    "docs/kept_outputs.json: notebook name -> ids of the cells whose outputs are stored in the notebook itself."
    return json.loads(KEPT.read_text(encoding="utf-8")) if KEPT.exists() else {}


def _comparable(outputs) -> list[tuple]:
    "What must stay the same for a stored output to be current: its text, and where figures are (not their bytes)."
    seen = []
    for out in outputs:
        kind, data = out.get("output_type"), out.get("data", {})
        if kind == "stream" and out.get("name") == "stdout":
            if seen and seen[-1][0] == "stdout": seen[-1] = ("stdout", seen[-1][1] + out["text"])
            else: seen.append(("stdout", out["text"]))
        elif kind == "error": seen.append(("error", out.get("ename")))
        elif kind in ("execute_result", "display_data") and WIDGET_MIME not in data:
            if PLOTLY_MIME in data or any(m.startswith("image/") for m in data): seen.append(("figure",))
            else: seen.append(("text", data.get("text/markdown") or data.get("text/plain")))
    return seen


def check_kept(notebooks: list[Path]) -> list[str]:
    "Outputs stored in nbs/ are exactly those docs/kept_outputs.json lists, and each equals this run's output."
    import nbformat
    kept, problems = kept_cells(), []
    for path in notebooks:
        if not (OUT / "executed" / path.name).exists():
            problems.append(f"{path.name} has no executed copy in {OUT / 'executed'}: run without --render-only")
            continue
        fresh = {c.get("id"): c for c in nbformat.read(OUT / "executed" / path.name, as_version=4).cells}
        listed = set(kept.get(path.stem, []))
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code": continue
            cid, listed_here = cell.get("id"), cell.get("id") in listed
            listed.discard(cid)
            if cell.outputs and not listed_here:
                problems.append(f"{path.name} cell {cid} stores outputs that {KEPT.name} does not list: add the id "
                                f"there or clear them (nbdev_clean --clear_all --fname nbs/{path.name})")
            elif listed_here and _comparable(cell.outputs) != _comparable(fresh[cid].get("outputs", [])):
                problems.append(f"{path.name} cell {cid}: its stored output differs from this run's; store the new one with "
                                f"python tools/build_site.py --only {path.stem} --keep-outputs (after this run) and commit")
        for cid in sorted(listed):  # the cell was split or deleted: nothing is stored for it, so nothing is wrong
            print(f"note: {KEPT.name} lists cell {cid} of {path.name}, which has no such cell any more")
    return problems


def keep_outputs(notebooks: list[Path]) -> list[Path]:
    "Store this run's outputs of the listed cells in nbs/ (outputs only: sources and other cells untouched)."
    import nbformat
    kept, changed = kept_cells(), []
    for path in notebooks:
        ids = set(kept.get(path.stem, []))
        if not ids: continue
        edited = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", str(path)], cwd=ROOT).returncode != 0
        if edited:  # outputs are written only over a committed notebook: a commit of them then holds outputs alone
            print(f"skipped {path.name}: it has changes not committed yet; commit them, then store its outputs")
            continue
        fresh = nbformat.read(OUT / "executed" / path.name, as_version=4)
        static_outputs([fresh], scale=1.0)  # plotly as PNG: GitHub's notebook view draws images, not plotly
        outputs = {c.get("id"): c.get("outputs", []) for c in fresh.cells}
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.get("id") in ids:
                cell.outputs = [o for o in outputs[cell.id]
                                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
                for o in cell.outputs:
                    if "execution_count" in o: o["execution_count"] = None
                    if "metadata" in o: o["metadata"] = {}
        tmp = path.with_name(f".{path.name}.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
        changed.append(path)
    for path in changed: subprocess.run(["nbdev_clean", "--fname", str(path)], cwd=ROOT, check=True)
    if any(p.resolve() == (ROOT / "nbs" / "index.ipynb").resolve() for p in changed):  # README.md shows its outputs
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_readme.py")], cwd=ROOT, check=True)
    return changed


def _plotly_pngs(figures: list[dict], scale: float = 1.5) -> list[bytes]:
    "PNG images of plotly figure dicts, drawn by kaleido in one headless Chromium session."
    if not figures: return []
    import warnings, kaleido, plotly.io as pio
    warnings.filterwarnings("ignore", message="The kopts argument is ignored")  # size and scale are passed per figure
    if chromium() is None: raise SystemExit("build_site: plotly figures are drawn by Chromium: apt-get install chromium")
    os.environ.setdefault("BROWSER_PATH", chromium())
    kaleido.start_sync_server(silence_warnings=True)
    try:
        images = []
        for fig in figures:
            layout = fig.get("layout", {})
            images.append(pio.to_image(fig, format="png", width=layout.get("width") or 800,
                                       height=layout.get("height") or 450, scale=scale))
        return images
    finally: kaleido.stop_sync_server(silence_warnings=True)


def static_outputs(notebooks: list, scale: float = 1.5) -> int:
    "Make the outputs static in place: plotly figures become PNG images (one Chromium for all), live widgets go."
    figure_outputs = []
    for nb in notebooks:
        for cell in nb.cells:
            if cell.cell_type != "code": continue
            kept = []
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if PLOTLY_MIME in data: figure_outputs.append(out)
                elif WIDGET_MIME in data: continue  # a progress bar or a control: nothing to see without a kernel
                kept.append(out)
            cell.outputs = kept
        nb.metadata.pop("widgets", None)  # widget state would make the page load a widget manager from a CDN
    # a still image shows a figure's data, not its animation frames: they are left out of what Chromium is sent
    figures = [{k: v for k, v in out["data"][PLOTLY_MIME].items() if k != "frames"} for out in figure_outputs]
    for out, png in zip(figure_outputs, _plotly_pngs(figures, scale)):
        out["data"] = {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": "<plotly figure>"}
    return len(figure_outputs)


def reader_view(nb) -> None:
    "What a reader sees, in place: `#| hide` cells (and cells left empty) dropped, `#|` directive lines taken out."
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            found = directives(cell.source)
            if "hide" in found or found.get("include:", "").lower() == "false": continue
            cell.source = "\n".join(l for l in cell.source.splitlines() if not _DIRECTIVE.match(l)).strip("\n")
            if not cell.source.strip() and not cell.get("outputs"): continue
        cells.append(cell)
    nb.cells = cells


def prepare_sources(notebooks: list[Path]) -> Path:
    "The Sphinx source folder: executed copies with static outputs, the images they show, the table of contents."
    import nbformat
    src = OUT / "src"
    if src.exists(): shutil.rmtree(src)
    src.mkdir(parents=True)
    for folder in ("images",):
        if (NBS / folder).is_dir(): shutil.copytree(NBS / folder, src / folder)
    books = []
    for path in notebooks:
        executed = OUT / "executed" / path.name
        if not executed.exists():
            raise SystemExit(f"build_site: {executed} is missing; run without --render-only first")
        books.append(nbformat.read(executed, as_version=4))
    figures = static_outputs(books)
    for path, nb in zip(notebooks, books):
        reader_view(nb)
        if path.stem == "index":  # the home page lists the chapters, in order, in the sidebar
            pages = "\n".join(p.stem for p in notebooks if p.stem != "index")
            nb.cells.append(nbformat.v4.new_markdown_cell(f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{pages}\n```"))
        nbformat.write(nb, src / path.name)
    print(f"== {len(notebooks)} pages, {figures} plotly figures drawn as PNG", flush=True)
    return src


def render(src: Path, jobs: int) -> Path:
    "Sphinx + MyST-NB: the executed notebooks to HTML in _site/html; any warning (a broken reference) is an error."
    html = OUT / "html"
    if html.exists(): shutil.rmtree(html)
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-j", str(jobs), "-b", "html", "-c", str(DOCS),
           str(src), str(html)]
    print("== rendering:", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return html


class _Links(HTMLParser):
    "The ids and the (attribute, url) pairs of one HTML page."
    def __init__(self):
        super().__init__()
        self.ids, self.urls = set(), []
    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("id", "name") and value: self.ids.add(value)
            if value and name in ("href", "src"): self.urls.append((tag, name, value))


def check_links(site: Path) -> list[str]:
    "Every local link, image, script and stylesheet of every page (and #anchor) exists; nothing loads from outside."
    pages, problems = {}, []
    for page in sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        pages[page.resolve()] = parser
    for page, parser in pages.items():
        for tag, attr, url in parser.urls:
            parts = urlsplit(url)
            if parts.scheme in ("mailto", "data", "javascript"): continue
            if parts.scheme or url.startswith("//"):
                if attr == "src" or tag == "link":  # a script, image, stylesheet or font: the page needs it offline
                    problems.append(f"{page.name}: loads {url} from outside the site")
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir(): target = target / "index.html"
            if not target.exists():
                problems.append(f"{page.relative_to(site.resolve())}: broken link {url}")
            elif (parts.fragment and target.suffix == ".html" and target in pages
                  and unquote(parts.fragment) not in pages[target].ids):
                problems.append(f"{page.relative_to(site.resolve())}: no anchor #{parts.fragment} in {target.name}")
    return problems


def _stamp(ok: bool, **facts) -> None:
    "_site/site.json: written when a build ends, so a test waiting for the site knows it is done (and how it went)."
    tmp = STAMP.with_name(f".{STAMP.name}.tmp")
    tmp.write_text(json.dumps({"ok": ok, **facts}, indent=1))
    os.replace(tmp, STAMP)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", help="notebook names (default: every notebook in nbs/)")
    p.add_argument("--nbs", type=Path, default=None,
                   help="run the notebooks of this folder instead, e.g. a copy made by `ld4lg course` (with --no-render)")
    p.add_argument("--workers", type=int, default=int(os.environ.get("NBDEV_WORKERS", 2)), help="kernels side by side")
    p.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run")
    p.add_argument("--jobs", type=int, default=2, help="Sphinx processes")
    p.add_argument("--no-render", action="store_true", help="only execute (the notebook test)")
    p.add_argument("--render-only", action="store_true", help="render from the executed copies of the last run")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the executed copies, the site and site.json (default: _site/ of the repository)")
    p.add_argument("--keep-outputs", action="store_true",
                   help=f"store the outputs of the cells listed in docs/{KEPT.name} in nbs/ (from the last run)")
    args = p.parse_args(argv)
    if args.nbs is not None:
        global NBS
        NBS = args.nbs.resolve()
        if not args.no_render: p.error("--nbs runs another folder's notebooks: pass --no-render as well")
    if args.out is not None:
        global OUT, STAMP
        OUT = args.out.resolve()
        STAMP = OUT / "site.json"
    notebooks = chapters(args.only)
    if args.keep_outputs:
        for path in keep_outputs(notebooks): print(f"stored the listed outputs in {path.relative_to(ROOT)}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped build still shuts its kernels down
    OUT.mkdir(exist_ok=True)
    STAMP.unlink(missing_ok=True)
    ok = False
    try:
        ok = build(notebooks, args)
        return 0 if ok else 1
    finally: _stamp(ok)


def build(notebooks: list[Path], args) -> bool:
    "Execute (unless --render-only), check the stored outputs, render (unless --no-render), check the links."
    start = time.monotonic()
    if not args.render_only and not execute_all(notebooks, args.workers, args.timeout): return False
    executed_at = time.monotonic()
    stale = check_kept(notebooks) if args.nbs is None else []  # a copy's stored outputs are nbs/'s, checked there
    for problem in stale: print("FAIL:", problem)
    if stale or args.no_render: return not stale
    html = render(prepare_sources(notebooks), args.jobs)
    problems = check_links(html)
    for problem in problems: print("FAIL:", problem)
    if problems: return False
    print(f"== site: {html / 'index.html'} ({len(notebooks)} pages); executing {executed_at - start:.0f} s, "
          f"rendering and checking {time.monotonic() - executed_at:.0f} s", flush=True)
    return True


if __name__ == "__main__":
    sys.exit(main())
