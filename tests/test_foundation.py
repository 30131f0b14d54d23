"Package-level checks: install, import cost, version, the README tool and the corpus builder."
import configparser, json, subprocess, sys, textwrap
from pathlib import Path

import ld4lg_edu
from conftest import ROOT


def test_version_matches_settings():
    cfg = configparser.ConfigParser(); cfg.read(ROOT / "settings.ini")
    assert ld4lg_edu.__version__ == cfg["DEFAULT"]["version"]


def test_import_stays_light():
    "`import ld4lg_edu` (and its core/data modules) must not drag in the heavy libraries."
    code = ("import sys, ld4lg_edu, ld4lg_edu.core, ld4lg_edu.data, ld4lg_edu.cli; "
            "print([m for m in ('transformers', 'datasets', 'umap', 'plotly', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_readme_is_generated_from_index():
    out = subprocess.run([sys.executable, "tools/make_readme.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_readme_renderer_hides_and_strips(tmp_path):
    import nbformat
    sys.path.insert(0, str(ROOT / "tools"))
    from make_readme import render
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("#| hide\nsecret = 1"),
        nbformat.v4.new_code_cell("#| eval: false\nprint('hi')"),
    ])
    text = render(nb)
    assert "# Title" in text and "print('hi')" in text
    assert "secret" not in text and "#| eval" not in text


def test_wordnet_builder_parses_synset_lines(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    import build_wordnet_corpus as b
    wn = tmp_path / "wn"; wn.mkdir()
    (wn / "data.noun").write_text(textwrap.dedent("""\
      1 This software and database is being provided to you, the LICENSEE, by
    02084071 05 n 02 dog 0 domestic_dog 0 000 | a member of the genus Canis that has been domesticated; "the dog barked all night"
    07720875 13 n 01 pie 0 000 | dish baked in pastry-lined pan often with a pastry top
    07720876 13 n 01 tart 0 000 | a small open pie
    """))
    for part in ("verb", "adj", "adv"): (wn / f"data.{part}").write_text("")
    rows = b.build(wn, tmp_path / "out")
    assert rows == [
        {"text": "a member of the genus Canis that has been domesticated", "category": "noun.animal", "pos": "n", "lemma": "dog"},
        {"text": "dish baked in pastry-lined pan often with a pastry top", "category": "noun.food", "pos": "n", "lemma": "pie"},
    ]  # the header line and the 4-word gloss are dropped
    assert (tmp_path / "out" / "WORDNET_LICENSE.txt").read_text().startswith("WordNet Release 3.0")


def test_cli_corpus_json():
    out = subprocess.run(["ld4lg", "corpus", "wordnet", "--label", "food", "--show", "3", "--json"],
                         capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    assert d["label_names"][2] == "food" and len(d["rows"]) == 3 and {r["label"] for r in d["rows"]} == {2}


def test_cli_bad_corpus_name_lists_known():
    out = subprocess.run(["ld4lg", "corpus", "wikipedia"], capture_output=True, text=True)
    assert out.returncode == 2 and "known corpora:" in out.stderr and "wordnet" in out.stderr


def test_evaluate_samples_tool_rows_are_means_over_chunks(monkeypatch):
    "tools/evaluate_samples.py: a run's row at a count is the mean of its chunks' numbers, empty texts included."
    sys.path.insert(0, str(ROOT / "tools"))
    import evaluate_samples as tool
    def fake_evaluate(texts, train, refs, labels=None, classifier=None, seed=25):
        return {"num_texts": len(texts), "diversity": 0.5, "memorization": 0.0, "mauve": len(texts) / 10,
                "mauve_features": "fake"}
    monkeypatch.setattr(tool, "evaluate_samples", fake_evaluate)
    run = {"a": ["red fox", "old owl", "", "red owl"], "b": ["tall elm", "old oak", "red elm", "qzx vvb"]}
    row = tool.score_chunks(run, 2, ["a", "b"], ["x"], ["y"], None, 0, vocab={"red", "fox", "old", "owl", "tall",
                                                                                "elm", "oak"})
    # chunk 1: 4 texts, every word known; chunk 2: one empty text, 3 texts, 4 of 6 words known
    assert row["num_chunks"] == 2 and row["num_empty"] == 0.5 and row["mauve_chunks"] == [0.4, 0.3]
    assert abs(row["mauve"] - 0.35) < 1e-12 and abs(row["lexical_validity"] - (1 + 4 / 6) / 2) < 1e-12
    assert tool.parse_key("steps=25,w=1.0,seed=2") == {"steps": 25, "w": 1.0, "seed": 2}
