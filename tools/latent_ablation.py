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
from ld4lg_edu.data import load_corpus
from ld4lg_edu.latent_space import interpolation_validity, lexical_validity, robustness_curve, vocabulary
from ld4lg_edu.pipeline import LatentDiffusionPipeline


def same_class_pairs(rows, n: int, seed: int = 0):
    "`n` pairs of distinct texts of the same class from `rows` ({'text', 'label'})."
    rng, by_class = random.Random(seed), {}
    for r in rows: by_class.setdefault(r["label"], []).append(r["text"])
    pairs = [tuple(rng.sample(by_class[rng.choice(sorted(by_class))], 2)) for _ in range(n)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pipeline"); p.add_argument("--name", required=True); p.add_argument("--out", required=True)
    p.add_argument("--per-class", type=int, default=100); p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0]); p.add_argument("--diagnostic-texts", type=int, default=300)
    args = p.parse_args()
    start = time.time()
    pipe = "default" if args.pipeline == "default" else args.pipeline
    pipe = LatentDiffusionPipeline.from_pretrained(pipe, device="cuda" if torch.cuda.is_available() else "cpu")
    corpus = load_corpus("wordnet")
    vocab = vocabulary(corpus.texts("train"))
    test = corpus.splits["test"]
    held_out = [r["text"] for r in test][:1000]
    ae = pipe.autoencoder
    out = {"name": args.name, "latent_shape": list(ae.latent_shape), "autoencoder": {k: v for k, v in vars(ae.config).items()}}
    out["reconstruction"] = reconstruction_metrics(held_out, ae.reconstruct(held_out))
    a, b = same_class_pairs(test, args.diagnostic_texts)
    out["interpolation"] = interpolation_validity(ae, a, b, vocab, weights=(0.0, 0.25, 0.5))
    out["robustness"] = robustness_curve(ae, held_out[:args.diagnostic_texts], vocab, sigmas=(0.0, 0.25, 0.5, 1.0))
    out["samples"], out["validity"], out["timing"] = {}, {}, {}
    for w in args.guidance:
        for seed in args.seeds:
            key, t = f"w={w},seed={seed}", time.time()
            run = {name: pipe.sample(args.per_class, label=name, guidance_scale=w, seed=seed * 100 + i).texts
                   for i, name in enumerate(pipe.label_names)}
            out["samples"][key], out["timing"][f"ld4lg,{key}"] = run, round(time.time() - t, 2)
            out["validity"][key] = {name: lexical_validity(texts, vocab) for name, texts in run.items()}
            out["validity"][key]["all"] = lexical_validity([t for texts in run.values() for t in texts], vocab)
            print(args.name, key, f"validity {out['validity'][key]['all']:.3f}", run["animal"][:2], flush=True)
    out["seconds"] = round(time.time() - start, 1)
    print(args.name, "reconstruction", {k: round(v, 1) for k, v in out["reconstruction"].items()},
          "interpolation", [round(r["validity"], 3) for r in out["interpolation"]],
          "robustness", [(r["sigma"], round(r["bleu"], 1), round(r["validity"], 3)) for r in out["robustness"]], flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
