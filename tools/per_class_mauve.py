"""Is the shipped model's MAUVE gap a matter of classes (samples of one class written like another) or of the texts
themselves? MAUVE within each class: a run's texts of class c against the test split's texts of class c (as many
texts as the test split holds for c), for the LD4LG and AR runs of a samples file, mean over seeds, and the valid
split's texts of c as the human ceiling. CPU, a few minutes.

    python tools/per_class_mauve.py --samples nbs/results/samples.json --out nbs/results/per_class_mauve.json
"""
import argparse, json, statistics

from ld4lg_edu.core import atomic_file
from ld4lg_edu.data import load_corpus
from ld4lg_edu.metrics import mauve_score

from evaluate_samples import load_samples, parse_key


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", nargs="+", default=["nbs/results/samples.json"])
    p.add_argument("--corpus", default="wordnet")
    p.add_argument("--out", default="nbs/results/per_class_mauve.json")
    args = p.parse_args(argv)
    corpus = load_corpus(args.corpus)
    if not corpus.label_names: raise ValueError(f"{args.corpus} has no classes; MAUVE within a class needs them")
    test = {n: [r["text"] for r in corpus.splits["test"] if r["label"] == i] for i, n in enumerate(corpus.label_names)}
    samples, by_run = load_samples(args.samples, args.corpus), {}
    for part in ("ld4lg", "ar"):
        for key, run in samples[part].items():
            k = parse_key(key)
            name = part + ("" if k.get("w") is None else f" (w={k['w']:g})")
            for c, refs in test.items():
                texts = [t for t in run[c] if t.strip()][:len(refs)]
                by_run.setdefault(name, {}).setdefault(c, []).append(
                    mauve_score(texts, refs, features="minilm", seed=25 + k["seed"]).mauve)
            print(name, key, flush=True)
    valid = {n: [r["text"] for r in corpus.splits["valid"] if r["label"] == i]
             for i, n in enumerate(corpus.label_names)}
    by_run["reference"] = {c: [mauve_score(valid[c][:len(refs)], refs, features="minilm", seed=25).mauve]
                           for c, refs in test.items()}  # held-out human texts: the ceiling
    out = {"description": f"MAUVE (MiniLM features) within each class of {args.corpus}: a run's texts of class c vs "
                          f"the test split's texts of c, as many as the test split holds; mean over seeds; 'reference' "
                          f"= the valid split's texts of c, the ceiling "
                          f"(tools/per_class_mauve.py on {', '.join(args.samples)})",
           "test_texts": {c: len(t) for c, t in test.items()},
           "mauve": {name: {c: statistics.mean(v) for c, v in per.items()} for name, per in by_run.items()}}
    with atomic_file(args.out) as tmp: tmp.write_text(json.dumps(out, indent=1) + "\n")
    for name, per in out["mauve"].items():
        print(f"{name:14s}", " ".join(f"{c} {v:.3f}" for c, v in per.items()))


if __name__ == "__main__":
    main()
