"The data chapter against the real files: shipped corpus offline, ../shared/data counts, hub mapping on local files."
import csv, json, warnings
import pytest
from ld4lg_edu.data import (load_corpus, local_corpus, hub_corpus, HubSpec, wordnet_glosses, read_wordnet,
                            TextCollator, load_tokenizer, SPLITS)


def total(corpus): return sum(len(corpus.splits[s]) for s in SPLITS)


def test_shipped_wordnet_offline():
    wn = load_corpus("wordnet")
    assert wn.label_names == ["animal", "plant", "food", "artifact", "person", "location"]
    counts = [sum(r["label"] == i for s in SPLITS for r in wn.splits[s]) for i in range(6)]
    all_food = sum(r["category"] == "noun.food" for r in read_wordnet())
    assert counts[2] == all_food < 4000 and max(counts) == 4000  # food is kept whole, the big classes capped
    texts = [t for s in SPLITS for t in wn.texts(s)]
    assert len(set(texts)) > 0.95 * len(texts)
    # splits are disjoint
    assert not set(wn.texts("train")) & set(wn.texts("test"))


def test_glosses_cover_all_rows():
    assert total(wordnet_glosses()) + wordnet_glosses().dropped == len(read_wordnet())


def test_ag_news_local_counts(shared_data):
    c = local_corpus("ag_news-local")
    with open(shared_data / "ag_news" / "ag_news_7200.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert total(c) + c.dropped == len(rows) == 7200
    assert sorted({r["label"] for s in SPLITS for r in c.splits[s]}) == [0, 1, 2, 3]
    assert c.label_names == ["World", "Sports", "Business", "Sci/Tech"]


def test_rocstories_local_counts(shared_data):
    c = local_corpus("rocstories-local")
    n_json = sum(1 for l in open(shared_data / "rocstories" / "roc_4500.json") if l.strip())
    with open(shared_data / "rocstories" / "story_cloze_val.csv", newline="") as f:
        n_cloze = len(list(csv.DictReader(f)))
    assert total(c) + c.dropped == n_json + n_cloze == 4500 + 1571
    assert all(len(t.split(". ")) >= 3 for t in c.texts("test")[:20])  # multi-sentence stories


def test_story_cloze_test_file_has_no_answers(shared_data):
    from ld4lg_edu.data import read_story_cloze_csv
    with pytest.raises(ValueError, match="AnswerRightEnding"):
        read_story_cloze_csv(shared_data / "rocstories" / "story_cloze_test.csv")


def test_qqp_local_counts(shared_data):
    c = local_corpus("qqp-local")
    def lines(name): return sum(1 for l in open(shared_data / "qqp" / name) if l.strip())
    assert len(c.splits["test"]) == lines("qqp_test_2000.jsonl") == 2000
    assert len(c.splits["train"]) + len(c.splits["valid"]) + c.dropped == lines("qqp_valid_2047.jsonl")
    assert c.task == "seq2seq"
    assert set(c.splits["train"][0]) == {"src", "tgt"}


def test_tinystories_local_counts(shared_data):
    c = local_corpus("tinystories-local")
    def paragraphs(name): return [p for p in (shared_data / "tinystories" / name).read_text().split("\n\n") if p.strip()]
    assert len(c.splits["test"]) == len(paragraphs("tinystories_val_first1000.txt"))
    assert len(c.splits["train"]) + len(c.splits["valid"]) == len(paragraphs("tinystories_train_head.txt"))


def test_hub_seq2seq_mapping_with_keep_filter(tmp_path):
    "The QQP hub spec keeps only duplicate pairs; exercised through datasets.load_dataset('json', ...)."
    rows = [{"question1": f"how do I learn {i}?", "question2": f"what is the way to learn {i}?", "label": i % 2} for i in range(60)]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "validation.jsonl").write_text(json.dumps({"question1": "a?", "question2": "b?", "label": 1}))
    spec = HubSpec("json", "seq2seq", src="question1", tgt="question2", keep="label",
                   splits={"train": "train", "valid": "validation"})
    c = hub_corpus("qqp", spec=spec, data_files={"train": str(tmp_path / "train.jsonl"), "validation": str(tmp_path / "validation.jsonl")})
    assert c.splits["test"] == [{"src": "a?", "tgt": "b?"}]  # GLUE's test has no labels: validation becomes test
    assert len(c.splits["train"]) + len(c.splits["valid"]) == 30  # only label==1 rows kept
    assert all(int(r["src"].split()[-1][:-1]) % 2 == 1 for r in c.splits["train"])


def test_missing_local_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "qqp")):
        local_corpus("qqp-local", data_dir=tmp_path)


def test_collator_counts_truncation_and_labels():
    tok = load_tokenizer()
    col = TextCollator(tok, max_length=8)
    batch = col([{"text": "a cat", "label": 0}, {"text": "one two three four five six seven eight nine ten", "label": 3}])
    assert batch["input_ids"].shape == (2, 8) and col.truncated == 1
    assert batch["labels"].tolist() == [0, 3]
    assert batch["attention_mask"][0].sum() < 8  # the short text is padded


def test_local_readers_name_the_file_the_line_and_the_fix(tmp_path):
    "A bad byte, label or line in a local corpus file stops the reader at that file and line (never a silent -1 or 8)."
    from ld4lg_edu.data import read_ag_news_csv, read_paragraphs, read_qqp_jsonl, read_rocstories_json, read_story_cloze_csv
    names = ["World", "Sports", "Business", "Sci/Tech"]
    cases = [
        ("ag.csv", '"1","t","a"\n"World","t","b"\n', lambda p: read_ag_news_csv(p, names), "line 2: label 'World' is not a class number"),
        ("ag.csv", '"1","t","a"\n"9","t","b"\n', lambda p: read_ag_news_csv(p, names), "line 2: label 9 is not a known class; known: 1=World"),
        ("ag.csv", '"0","t","a"\n', lambda p: read_ag_news_csv(p, names), "line 1: label 0 is not a known class"),
        ("ag.csv", '"1","only two"\n', lambda p: read_ag_news_csv(p, names), "line 1: expected 3 columns"),
        ("ag.csv", b'"1","t","caf\xe9"\n', lambda p: read_ag_news_csv(p, names), "line 1: byte 0xe9 is not UTF-8"),
        ("text.txt", b"fine\n\nna\xefve\n", read_paragraphs, "line 3: byte 0xef is not UTF-8"),
        ("qqp.jsonl", '{"src": "a?", "trg": "b?"}\n{"src": "a?", "tgt": "b?"}\n', read_qqp_jsonl, "line 2: expected an object"),
        ("roc.json", '["One.", "Two."]\n\n["Three." \n', read_rocstories_json, "line 3: not valid JSON"),
        ("roc.json", '{"story": "One."}\n', read_rocstories_json, "line 1: expected a JSON list of sentences"),
        ("cloze.csv", "InputSentence1,InputSentence2,InputSentence3,InputSentence4,RandomFifthSentenceQuiz1,"
                      "RandomFifthSentenceQuiz2,AnswerRightEnding\na,b,c,d,e,f,3\n", read_story_cloze_csv,
         "line 2: AnswerRightEnding is '3'"),
    ]
    for name, content, reader, message in cases:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(ValueError) as e:
            reader(path)
        assert f"{path}, {message}" in str(e.value) or (str(path) in str(e.value) and message in str(e.value)), str(e.value)
    (tmp_path / "ok.csv").write_text('"4","t","x"\n')
    assert read_ag_news_csv(tmp_path / "ok.csv", names) == [{"text": "x", "label": 3}]
    with pytest.raises(ValueError, match="iconv -f latin1 -t utf-8"):                     # the fix is part of the error
        read_paragraphs(tmp_path / "text.txt")


def test_local_ag_news_refuses_a_label_its_classes_file_lacks(tmp_path):
    (tmp_path / "ag_news").mkdir()
    (tmp_path / "ag_news" / "classes.txt").write_text("World\nSports\n")
    (tmp_path / "ag_news" / "ag_news_7200.csv").write_text('"1","t","rain"\n"2","t","goal"\n"3","t","stocks"\n')
    with pytest.raises(ValueError, match=r"ag_news_7200.csv, line 3: label 3 is not a known class; known: 1=World, 2=Sports"):
        local_corpus("ag_news-local", data_dir=tmp_path)
