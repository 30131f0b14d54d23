"""Score one trained pipeline for the latent-space ablation (chapter 03b): samples for every class at w = 1 and w = 2
(2 seeds), their lexical validity, and the autoencoder's diagnostics on held-out WordNet definitions (reconstruction,
interpolation between same-class pairs, robustness to noise). Writes one JSON file; MAUVE, class accuracy and
memorisation are computed from its samples afterwards on a CPU (tools/evaluate_samples.py).

    python tools/latent_ablation.py PIPELINE_DIR --name NAME --out results.json [--per-class 100]
"""
import argparse, json, random, time
from pathlib import Path

import torch

from ld4lg_edu.ae_training import reconstruction_metrics
from ld4lg_edu.core import atomic_file
from ld4lg_edu.data import load_corpus
from ld4lg_edu.latent_space import interpolation_validity, lexical_validity, robustness_curve, vocabulary
from ld4lg_edu.pipeline import LatentDiffusionPipeline


def same_class_pairs(rows, n: int, seed: int = 0):
    "`n` pairs of distinct texts of the same class from `rows` ({'text', 'label'})."
    rng, by_class = random.Random(seed), {}
    for r in rows: by_class.setdefault(r["label"], []).append(r["text"])
    pairs = [tuple(rng.sample(by_class[rng.choice(sorted(by_class))], 2)) for _ in range(n)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def score(pipe: LatentDiffusionPipeline, name: str, per_class: int = 100, seeds=(0, 1), guidance=(1.0, 2.0),
          diagnostic_texts: int = 300) -> dict:
    """The ablation row of `pipe`: its autoencoder's diagnostics and reconstruction on held-out definitions, then
    `per_class` samples per class for each (w, seed) with their lexical validity."""
    start = time.time()
    corpus = load_corpus("wordnet")
    vocab = vocabulary(corpus.texts("train"))
    test = corpus.splits["test"]
    held_out = [r["text"] for r in test][:1000]
    ae = pipe.autoencoder
    out = {"name": name, "latent_shape": list(ae.latent_shape), "autoencoder": dict(vars(ae.config))}
    out["reconstruction"] = reconstruction_metrics(held_out, ae.reconstruct(held_out))
    a, b = same_class_pairs(test, diagnostic_texts)
    out["interpolation"] = interpolation_validity(ae, a, b, vocab, weights=(0.0, 0.25, 0.5))
    out["robustness"] = robustness_curve(ae, held_out[:diagnostic_texts], vocab, sigmas=(0.0, 0.25, 0.5, 1.0))
    out["samples"], out["validity"], out["timing"] = {}, {}, {}
    for w in guidance:
        for seed in seeds:
            key, t = f"w={w},seed={seed}", time.time()
            run = {label: pipe.sample(per_class, label=label, guidance_scale=w, seed=seed * 100 + i).texts
                   for i, label in enumerate(pipe.label_names)}
            out["samples"][key], out["timing"][f"ld4lg,{key}"] = run, round(time.time() - t, 2)
            out["validity"][key] = {label: lexical_validity(texts, vocab) for label, texts in run.items()}
            out["validity"][key]["all"] = lexical_validity([t for texts in run.values() for t in texts], vocab)
            print(name, key, f"validity {out['validity'][key]['all']:.3f}", run["animal"][:2], flush=True)
    out["ld4lg"] = out["samples"]  # the samples under the key tools/evaluate_samples.py reads
    out["seconds"] = round(time.time() - start, 1)
    print(name, "reconstruction", {k: round(v, 1) for k, v in out["reconstruction"].items()},
          "interpolation", [round(r["validity"], 3) for r in out["interpolation"]],
          "robustness", [(r["sigma"], round(r["bleu"], 1), round(r["validity"], 3)) for r in out["robustness"]],
          flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pipeline"); p.add_argument("--name", required=True); p.add_argument("--out", required=True)
    p.add_argument("--per-class", type=int, default=100); p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0])
    p.add_argument("--diagnostic-texts", type=int, default=300)
    args = p.parse_args()
    pipe = "default" if args.pipeline == "default" else args.pipeline
    pipe = LatentDiffusionPipeline.from_pretrained(pipe, device="cuda" if torch.cuda.is_available() else "cpu")
    out = score(pipe, args.name, args.per_class, args.seeds, args.guidance, args.diagnostic_texts)
    with atomic_file(args.out) as tmp: Path(tmp).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
