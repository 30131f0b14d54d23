"""The way in for pip users: `ld4lg course` copies the chapters out (never over a folder of the reader's) and starts
JupyterLab on them; the chapters travel in the built package; `ld4lg-edu[course]` brings every module they import."""
import ast, importlib.metadata as md, io, re, subprocess, sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import ld4lg_edu.cli as cli

ROOT = Path(__file__).resolve().parents[1]


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try: code = cli.main(list(argv))
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()


def test_course_copies_the_chapters_and_starts_lab_there(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(cli, "launch_lab", lambda folder, open_browser=True, port=None: started.append((folder, port)))
    code, out, _ = run("course", "--dir", str(tmp_path / "course"), "--port", "8899")
    assert code is None and started == [((tmp_path / "course").resolve(), 8899)], out
    shipped = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb"))
    assert sorted(p.name for p in (tmp_path / "course").glob("*.ipynb")) == shipped
    assert (tmp_path / "course" / "results" / "samples.json").is_file()  # what chapter 09 reads
    assert (tmp_path / "course" / cli.COURSE_MARKER).is_file()


def test_course_reopens_its_own_copy_and_keeps_the_readers_edits(tmp_path):
    folder = tmp_path / "course"
    assert run("course", "--dir", str(folder), "--no-lab")[0] is None
    (folder / "07_samplers.ipynb").write_text("my own version")
    (folder / "my_notes.ipynb").write_text("{}")
    (folder / "08_pipeline.ipynb").unlink()
    code, out, _ = run("course", "--dir", str(folder), "--no-lab")
    assert code is None and "1 notebooks and folders copied" in out, out
    assert (folder / "07_samplers.ipynb").read_text() == "my own version" and (folder / "my_notes.ipynb").exists()
    assert (folder / "08_pipeline.ipynb").is_file()


@pytest.mark.parametrize("make", ["file", "foreign folder"])
def test_course_refuses_a_folder_it_did_not_make(make, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "launch_lab", lambda *a, **k: pytest.fail("JupyterLab started after an error"))
    target = tmp_path / "target"
    if make == "file": target.write_text("data")
    else: target.mkdir(); (target / "thesis.tex").write_text("draft")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, _, err = run("course", "--dir", str(target))
    assert code == 2 and ("not a course copy" in err or "is a file" in err), err
    assert "--dir" in err  # the fix is named
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_built_package_carries_the_chapters(tmp_path):
    "setup.py's build_py puts nbs/ into the package as ld4lg_edu/course (what a wheel holds)."
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True)
    course = tmp_path / "ld4lg_edu" / "course"
    assert sorted(p.name for p in course.glob("*.ipynb")) == sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb"))
    assert (course / "images" / "explorer.png").is_file() and (course / "results" / "default_model_eval.json").is_file()
    # the installed package finds them there (a source checkout falls back to nbs/)
    assert cli.course_source() in (ROOT / "nbs", Path(cli.__file__).resolve().parent / "course")


def _closure(dist: str, extras: set[str]) -> set[str]:
    "Canonical names of `dist` and everything it requires (with `extras`), as installed here."
    seen, todo = set(), [(dist, frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if (key, wanted) in seen: continue
        seen.add((key, wanted))
        for line in md.requires(name) or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                try: md.distribution(req.name)
                except md.PackageNotFoundError: continue  # e.g. a platform-specific dependency not installed here
                todo.append((req.name, frozenset(req.extras)))
    return {key for key, _ in seen}


def _chapter_imports() -> dict[str, set[str]]:
    "Top-level module -> chapters importing it, over every code cell of nbs/*.ipynb."
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "nbs").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code": continue
            src = "\n".join(l for l in cell.source.splitlines() if not re.match(r"\s*[%!]", l))
            for node in ast.walk(ast.parse(src)):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
                for name in names: found.setdefault(name.split(".")[0], set()).add(path.stem)
    return found


def test_course_extra_brings_every_module_the_chapters_import():
    installed = _closure("ld4lg_edu", {"course"})
    providers = md.packages_distributions()
    missing = {}
    for module, where in _chapter_imports().items():
        if module in sys.stdlib_module_names or module == "ld4lg_edu": continue
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & installed: missing[module] = (sorted(dists) or "not installed", sorted(where))
    assert not missing, f"modules the chapters import that ld4lg-edu[course] does not bring: {missing}"
    assert "diffusers" in installed and "nbdev" not in installed  # the check can tell them apart
