"""Score LD4LG and autoregressive-baseline samples on a corpus: the rows of the results tables in chapters 08 and 09.

Per (model, guidance w, seed): 4-gram memorisation against the corpus's train split, diversity, lexical validity (the
share of words found in --validity-corpus's train split, chapter 03b), MAUVE against its test split on MiniLM features
(not the paper's GPT-2-large features) and, for class corpora, class accuracy under a MiniLM + logistic-regression
classifier trained on the train split. A "reference" row scores held-out human text the same
way: test-split texts (per class, at most --per-class, one draw per seed) with MAUVE against the disjoint valid split.
MAUVE and diversity depend on how many texts are scored, so every row is scored at a common count: for each K of
--per-class, a run is cut into disjoint chunks of K texts per class (ld4lg_edu.metrics.equal_chunks), each chunk is
scored and the row holds the mean over chunks (`per_class`, `num_chunks`, `mauve_chunks`). Every text is embedded once
(ld4lg_edu.metrics memoises MiniLM embeddings). CPU, a few minutes per corpus.

Samples files hold {"ld4lg": {"w=..,seed=..": {class: [texts]}}, "ar": {"seed=..": {class: [texts]}}, "timing": {...}}
(the class is "all" for an unconditional corpus), either at the top level or under the corpus name, as written by
tools/sample_corpora.py; several files are merged.

    python tools/evaluate_samples.py                                   # the shipped model (wordnet)
    python tools/evaluate_samples.py --corpus ag_news-local --samples a.json b.json --out nbs/results/ag_news_eval.json
"""
from __future__ import annotations
import argparse, json, random, time
from pathlib import Path

from ld4lg_edu.core import atomic_file
from ld4lg_edu.data import load_corpus
from ld4lg_edu.latent_space import lexical_validity, vocabulary
from ld4lg_edu.metrics import (class_accuracy, equal_chunks, minilm_embed, ngram_set, ngrams, word_tokens,
                               train_text_classifier, evaluate_samples)


def parse_key(key: str) -> dict:
    """'w=2.0,seed=0' -> {'w': 2.0, 'seed': 0}; an optional 'variant=NAME' part names how the texts were made, an optional
    'steps=N' the sampler steps (over --steps)."""
    out = {}
    for part in key.split(","):
        name, value = part.split("=")
        out[name] = value if name == "variant" else int(value) if name in ("seed", "steps") else float(value)
    return out


def load_samples(paths, corpus: str) -> dict:
    "Merge the samples files' runs of `corpus`."
    merged = {"ld4lg": {}, "ar": {}, "timing": {}}
    for path in paths:
        data = json.loads(Path(path).read_text())
        data = data.get(corpus, data)
        for part in merged: merged[part].update(data.get(part, {}))
    if not merged["ld4lg"] and not merged["ar"]: raise ValueError(f"{paths} hold no samples of {corpus!r}")
    return merged


def score(texts_by_class: dict, label_names, train_texts, references, classifier, seed: int, vocab=None) -> dict:
    "One row of metrics over the texts of every class (lexical validity against `vocab`); empty texts dropped, counted."
    texts, labels, empty = [], [], 0
    for name, batch in texts_by_class.items():
        if label_names and name not in label_names:
            raise ValueError(f"samples hold class {name!r} but the corpus knows {label_names}; regenerate the samples")
        for t in batch:
            if t.strip(): texts.append(t); labels.append(name)
            else: empty += 1
    row = evaluate_samples(texts, train_texts, references, labels=labels if classifier else None, classifier=classifier,
                           seed=25 + seed)
    row["num_empty"] = empty
    if vocab is not None: row["lexical_validity"] = lexical_validity(texts, vocab)
    known = set(train_texts)
    row["exact_copies"] = sum(t in known for t in texts) / max(1, len(texts))  # whole training texts written again
    if classifier:
        row["class_accuracy_by_class"] = {name: class_accuracy([t for t in batch if t.strip()], name, classifier)
                                          for name, batch in texts_by_class.items() if any(t.strip() for t in batch)}
    return row


def score_chunks(run: dict, per_class: int, *args, **kwargs) -> dict | None:
    """`score` on each disjoint chunk of `per_class` texts per class of `run`, averaged (None when a class holds fewer
    texts): the row of a run at that common count."""
    if min(len(batch) for batch in run.values()) < per_class: return None
    rows = [score(chunk, *args, **kwargs) for chunk in equal_chunks(run, per_class)]
    out = {k: (sum(r[k] for r in rows) / len(rows) if isinstance(v, (int, float)) else v) for k, v in rows[0].items()
           if not isinstance(v, dict)}  # numbers (num_empty too) are means over the chunks
    if "class_accuracy_by_class" in rows[0]:
        out["class_accuracy_by_class"] = {n: sum(r["class_accuracy_by_class"][n] for r in rows) / len(rows)
                                          for n in rows[0]["class_accuracy_by_class"]}
    return {**out, "num_texts": sum(r["num_texts"] for r in rows) // len(rows), "per_class": per_class,
            "num_chunks": len(rows), "mauve_chunks": [r["mauve"] for r in rows]}


def examples(run: dict, train_texts, k: int = 2, max_copied: float = 0.5) -> dict:
    "A few texts per class whose 4-grams are mostly new (at most `max_copied` in train): illustrations, not copies."
    seen = ngram_set(train_texts, 4)
    def copied(t):
        grams = ngrams(word_tokens(t), 4)
        return sum(g in seen for g in grams) / max(1, len(grams))
    return {name: [t for t in batch if len(word_tokens(t)) >= 4 and copied(t) <= max_copied][:k]
            for name, batch in run.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="wordnet")
    parser.add_argument("--samples", nargs="+", default=["nbs/results/samples.json"])
    parser.add_argument("--out", default="nbs/results/default_model_eval.json")
    parser.add_argument("--sampler", default="dpmpp2m", help="the LD4LG sampler the samples were drawn with (recorded)")
    parser.add_argument("--steps", type=int, default=25, help="the LD4LG sampler steps (recorded)")
    parser.add_argument("--per-class", type=int, nargs="+", default=[100, 200],
                        help="score every row at these counts of texts per class (runs are cut into equal chunks)")
    parser.add_argument("--examples", type=int, default=0, help="store this many example texts per class and model")
    parser.add_argument("--about", default="", help="what the samples are (how they were made), put first in the description")
    parser.add_argument("--validity-corpus", default=None,
                        help="the corpus whose train-split words count as real (default: --corpus; the shipped model's "
                             "figures use wordnet-glosses, the 88k definitions its LM was trained on)")
    args = parser.parse_args(argv)

    start = time.time()
    samples = load_samples(args.samples, args.corpus)
    corpus = load_corpus(args.corpus)
    names = corpus.label_names
    train, valid, test = (corpus.splits[s] for s in ("train", "valid", "test"))
    train_texts, valid_texts, test_texts = ([r["text"] for r in rows] for rows in (train, valid, test))
    vocab = vocabulary(load_corpus(args.validity_corpus).texts("train") if args.validity_corpus else train_texts)

    # Embed every distinct text once, longest-batch sorting inside; later calls hit the cache.
    generated = [t for part in ("ld4lg", "ar") for run in samples[part].values() for b in run.values() for t in b
                 if t.strip()]
    minilm_embed(train_texts + valid_texts + test_texts + generated)

    classifier = None
    if names:
        classifier = train_text_classifier(train_texts, [r["label"] for r in train], embed="minilm", label_names=names)
        print(f"classifier (MiniLM + logistic regression, {args.corpus} train): "
              f"held-out accuracy {classifier.heldout_accuracy:.3f}")

    rows, shown = [], {}
    for per_class in args.per_class:
        for part in ("ld4lg", "ar"):
            for key, run in samples[part].items():
                k = parse_key(key)
                row = score_chunks(run, per_class, names, train_texts, test_texts, classifier, k["seed"], vocab=vocab)
                if row is None:
                    print(f"{part} {key}: fewer than {per_class} texts in a class; no row at that count"); continue
                rows.append({"model": part, "guidance_w": k.get("w"), "seed": k["seed"],
                             **({"variant": k["variant"]} if "variant" in k else {}),
                             "sampler": args.sampler if part == "ld4lg" else "nucleus",
                             "steps": k.get("steps", args.steps) if part == "ld4lg" else None,
                             **row, "sample_seconds": samples["timing"].get(f"{part},{key}")})
                if args.examples and k["seed"] == 0 and per_class == args.per_class[0]:
                    shown[f"{part},{key}"] = examples(run, train_texts, args.examples)
        for seed in sorted({r["seed"] for r in rows}):
            rng = random.Random(seed)
            if names:  # as many test texts per class as the split holds, up to per_class
                by_class = [[r["text"] for r in test if r["label"] == i] for i in range(len(names))]
                draw = {n: rng.sample(texts, min(per_class, len(texts))) for n, texts in zip(names, by_class)}
            else:
                draw = {"all": rng.sample(test_texts, min(per_class, len(test_texts)))}
            row = score(draw, names, train_texts, valid_texts, classifier, seed, vocab=vocab)
            rows.append({"model": "reference", "guidance_w": None, "seed": seed, "sampler": None, "steps": None, **row,
                         "per_class": per_class, "num_chunks": 1})

    per_run = {part: len(next(iter(samples[part].values()), {})) for part in ("ld4lg", "ar")}
    classes = "classes: " + ", ".join(names) if names else "unconditional"
    out = {"description": (f"{args.about.rstrip('. ')}. " if args.about else "") + f"LD4LG vs the autoregressive baseline on {args.corpus} ({classes}). "
                          "MAUVE on MiniLM features (all-MiniLM-L6-v2), not GPT-2-large; generated samples vs the test split, "
                          "the reference row = human test-split texts vs the valid split. Rows are scored at "
                          f"{' and '.join(map(str, args.per_class))} texts per class (disjoint chunks of a run, "
                          "averaged; the reference holds what the test split has, up to that count).",
           "corpus": args.corpus, "splits": {s: len(corpus.splits[s]) for s in ("train", "valid", "test")},
           "classifier": classifier and {"embed": classifier.embed_name, "heldout_accuracy": classifier.heldout_accuracy,
                                         "train_texts": len(train_texts)},
           "validity_corpus": args.validity_corpus or args.corpus, "mauve_features": "minilm", "classes_per_run": per_run,
           "rows": rows, "seconds": round(time.time() - start, 1)}
    if shown: out["examples"] = shown
    with atomic_file(args.out) as tmp: tmp.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out} ({len(rows)} rows) in {out['seconds']} s")


if __name__ == "__main__":
    main()
