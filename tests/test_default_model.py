"The trained model shipped in the package: it loads offline and its class-conditional samples belong to the class asked for."
import json, os, subprocess, sys
import pytest
import torch

from ld4lg_edu.core import asset_path
from ld4lg_edu.pipeline import load_default
from ld4lg_edu.samplers import DEFAULT_GUIDANCE


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return load_default(device="cpu")


@pytest.fixture(scope="module")
def judge():
    "A TF-IDF + logistic-regression classifier of the six classes, trained on the corpus' train split (held-out accuracy ~0.85)."
    from ld4lg_edu.data import load_corpus
    from ld4lg_edu.metrics import train_text_classifier
    wn = load_corpus("wordnet")
    return train_text_classifier(wn.texts("train"), wn.labels("train"), embed="tfidf", label_names=wn.label_names)


def test_shipped_model_shape(pipe):
    assert pipe.label_names == ["animal", "plant", "food", "artifact", "person", "location"]
    assert (pipe.num_latents, pipe.latent_dim) == (32, 64)
    files = [p for p in asset_path("default_model").rglob("*") if p.is_file()]
    assert all(p.stat().st_size <= 15 * 2**20 for p in files)          # every file ships under 15 MiB
    assert sum(p.stat().st_size for p in files) <= 80 * 10**6          # the whole model under 80 MB
    assert len(pipe.autoencoder.tokenizer) == 32768                    # a vocabulary where most words are one token


def test_guided_samples_are_of_the_requested_class(pipe, judge):
    "Guided samples (w=3) of each class are classified as that class far above chance (1/6)."
    n = 12
    texts, wanted = [], []
    for i, name in enumerate(pipe.label_names):
        texts += pipe.sample(n, label=name, guidance_scale=3.0, seed=i).texts
        wanted += [i] * n
    predicted = judge.predict(texts)
    accuracy = float((predicted == torch.tensor(wanted).numpy()).mean())
    print(f"class accuracy of guided samples: {accuracy:.2f} (chance 0.17, judge held-out {judge.heldout_accuracy:.2f})")
    assert accuracy > 0.5


def test_guidance_sharpens_classes(pipe, judge):
    "The same seeds sampled with w=3 are classified as the asked class at least as often as without guidance (w=1)."
    labels = ["food"] * 12 + ["person"] * 12
    want = [2] * 12 + [4] * 12
    acc = {}
    for w in (1.0, 3.0):
        texts = pipe.sample(24, label=labels, guidance_scale=w, seed=7).texts
        acc[w] = float((judge.predict(texts) == want).mean())
    print(acc)
    assert acc[3.0] >= acc[1.0]


def test_cli_sample_prints_n_lines_offline():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(["ld4lg", "sample", "--label", "animal", "--n", "8", "--seed", "0"], capture_output=True, text=True, env=env, check=True)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 8 and all(l.strip() for l in lines)
    js = subprocess.run(["ld4lg", "sample", "--label", "plant", "--n", "2", "--json", "--seed", "1"], capture_output=True, text=True, env=env, check=True)
    d = json.loads(js.stdout)
    assert d["label"] == "plant" and len(d["texts"]) == 2 and d["guidance_scale"] == DEFAULT_GUIDANCE


def test_cli_unknown_label_lists_known():
    out = subprocess.run(["ld4lg", "sample", "--label", "dragon", "--n", "2"], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 2 and "known labels: animal, plant, food" in out.stderr


def test_shipped_samples_are_written_in_real_words(pipe):
    """At the shipped defaults (15 steps, the command line's w for a class) nearly every word of a sample occurs in the
    WordNet training glosses, as for human definitions (0.984); an 8k-token course LM wrote 0.905 (chapter 03b)."""
    from ld4lg_edu.data import load_corpus
    from ld4lg_edu.latent_space import lexical_validity
    assert pipe.steps == 15 and pipe.sampler == "dpmpp2m"
    texts = [t for i, name in enumerate(pipe.label_names)
             for t in pipe.sample(10, label=name, guidance_scale=DEFAULT_GUIDANCE, seed=100 + i).texts]
    validity = lexical_validity(texts, load_corpus("wordnet-glosses").texts("train"))
    print(f"lexical validity of {len(texts)} samples: {validity:.3f}")
    assert validity >= 0.96


def test_shipped_student_samples_in_four_passes(pipe, judge):
    """The shipped 4-step student (chapter 07a) starts from its measured temperature τ = 1.3, writes real words of the
    asked class at the command line's w, and its samples are more varied than from z_1 itself (the crowding τ undoes)."""
    from ld4lg_edu.data import load_corpus
    from ld4lg_edu.latent_space import lexical_validity
    from ld4lg_edu.metrics import ngram_set
    student = pipe.students[4]
    assert sorted(pipe.students) == [4] and student.noise_scale == 1.3
    labels = [name for name in pipe.label_names for _ in range(8)]
    warm = pipe.sample(len(labels), label=labels, sampler="distilled", steps=4, guidance_scale=DEFAULT_GUIDANCE, seed=3)
    assert float((judge.predict(warm.texts) == [pipe.label_names.index(n) for n in labels]).mean()) > 0.5
    assert lexical_validity(warm.texts, load_corpus("wordnet-glosses").texts("train")) >= 0.95
    student.noise_scale = 1.0
    try: cold = pipe.sample(len(labels), label=labels, sampler="distilled", steps=4, guidance_scale=DEFAULT_GUIDANCE,
                            seed=3)
    finally: student.noise_scale = 1.3
    print(len(ngram_set(warm.texts, 2)), len(ngram_set(cold.texts, 2)), "distinct bigrams from 1.3·z_1 and z_1")
    assert len(ngram_set(warm.texts, 2)) > len(ngram_set(cold.texts, 2))
