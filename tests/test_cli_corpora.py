"The CLI stages behind tools/train_corpora.sh: corpus mixtures, a tokenizer of one's own, and the flags that carry it."
from pathlib import Path

import pytest

from ld4lg_edu.cli import main


def run_cli(args, capsys):
    "Run `ld4lg ARGS`; return (exit code, stdout, stderr)."
    try: code = main(args) or 0
    except SystemExit as e: code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_mixture_concatenates_splits(shared_data):
    from ld4lg_edu.data import load_corpus
    ag, roc = load_corpus("ag_news-local"), load_corpus("rocstories-local")
    mix = load_corpus("ag_news-local+rocstories-local")
    assert mix.task == "unconditional" and mix.label_names is None
    for split in ("train", "valid", "test"):
        assert mix.texts(split) == ag.texts(split) + roc.texts(split)


def test_train_tokenizer_on_a_mixture(shared_data, tmp_path, capsys):
    from ld4lg_edu.data import load_corpus, load_tokenizer
    code, out, _ = run_cli(["train-tokenizer", "--corpus", "ag_news-local+rocstories-local", "--vocab-size", "600",
                            "--out", str(tmp_path / "tok")], capsys)
    assert code == 0 and "trained on 12000 texts" in out
    tok = load_tokenizer(tmp_path / "tok")
    assert len(tok) == 600
    story = load_corpus("rocstories-local").texts("test")[0]
    assert tok.decode(tok(story)["input_ids"], skip_special_tokens=True).strip() == story


def test_train_ar_uses_the_given_tokenizer(tok_dir, tmp_path, capsys):
    from ld4lg_edu.baseline import ARBaseline
    code, _, err = run_cli(["train-ar", "--preset", "tiny", "--corpus", "wordnet", "--tokenizer", str(tok_dir),
                            "--steps", "2", "--out", str(tmp_path / "ar")], capsys)
    assert code == 0, err
    ar = ARBaseline.from_pretrained(tmp_path / "ar", device="cpu")
    assert len(ar.tokenizer) == 400 and ar.model.config.vocab_size == 400


SHIPPED_LM = str(Path(__file__).resolve().parents[1] / "ld4lg_edu" / "assets" / "default_model" / "autoencoder" / "lm")

@pytest.mark.parametrize("command", [["train-lm", "--preset", "tiny"], ["train-ae", "--preset", "tiny", "--lm", SHIPPED_LM]])
def test_max_length_beyond_the_lm_is_refused(command, tmp_path, capsys):
    code, _, err = run_cli([*command, "--max-length", "512", "--steps", "1", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "512" in err and "128 positions" in err


def test_corpus_label_filter_uses_the_one_label_check(capsys):
    "`ld4lg corpus --label` keeps only that class's rows; an unknown name is refused with the known labels."
    import json
    from ld4lg_edu.data import load_corpus
    names = load_corpus("wordnet").label_names
    code, out, _ = run_cli(["corpus", "wordnet", "--label", names[1], "--show", "20", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)["rows"]
    assert rows and {r["label"] for r in rows} == {1}
    code, out, err = run_cli(["corpus", "wordnet", "--label", "mineral"], capsys)
    assert code != 0 and not out and f"unknown label 'mineral'; known labels: {', '.join(names)}" in err
