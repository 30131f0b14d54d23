"""Draw the evaluation samples from the models of tools/train_corpora.sh (on the GPU that trained them).

For every corpus: LD4LG samples (DPM-Solver++(2M), --steps) at each guidance scale w for class corpora (w=1 only for
unconditional ones) and AR-baseline samples (nucleus p=0.95), per seed; class corpora get --n-per-class texts of every
class, unconditional ones --n texts. Output: {corpus: {"ld4lg": {"w=..,seed=..": {class: [texts]}}, "ar": {"seed=..":
{class: [texts]}}, "timing": {...}}}, with the class "all" for unconditional corpora; tools/evaluate_samples.py scores it.

    python tools/sample_corpora.py RUNS_DIR --out samples.json [--corpora ag_news-local rocstories-local]
"""
import argparse, json, time
from pathlib import Path

from ld4lg_edu.baseline import ARBaseline
from ld4lg_edu.pipeline import LatentDiffusionPipeline


def draw(sample_one, names, per_class: int, n: int) -> dict:
    "{class name: texts} for a class corpus, {'all': texts} for an unconditional one."
    if names: return {name: sample_one(per_class, name) for name in names}
    return {"all": sample_one(n, None)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs")
    parser.add_argument("--out", required=True)
    parser.add_argument("--corpora", nargs="+", default=["ag_news-local", "rocstories-local"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--n-per-class", type=int, default=125)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--which", nargs="+", default=["ld4lg", "ar"], choices=["ld4lg", "ar"])
    args = parser.parse_args(argv)
    out = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    for corpus in args.corpora:
        result = out.setdefault(corpus, {"ld4lg": {}, "ar": {}, "timing": {}})
        if "ld4lg" in args.which:
            pipe = LatentDiffusionPipeline.from_pretrained(Path(args.runs) / corpus / "pipeline")
            names = pipe.label_names
            for w in (args.guidance if names else [1.0]):
                for seed in args.seeds:
                    start = time.time()
                    run = draw(lambda k, name: pipe.sample(k, label=name, guidance_scale=w, steps=args.steps, seed=seed).texts,
                               names, args.n_per_class, args.n)
                    result["ld4lg"][f"w={w},seed={seed}"] = run
                    result["timing"][f"ld4lg,w={w},seed={seed}"] = time.time() - start
                    print(corpus, "ld4lg", w, seed, next(iter(run.values()))[:2], flush=True)
        if "ar" in args.which:
            ar = ARBaseline.from_pretrained(Path(args.runs) / corpus / "ar")
            names = ar.label_names
            for seed in args.seeds:
                start = time.time()
                run = draw(lambda k, name: ar.sample(k, label=name, seed=seed), names, args.n_per_class, args.n)
                result["ar"][f"seed={seed}"] = run
                result["timing"][f"ar,seed={seed}"] = time.time() - start
                print(corpus, "ar", seed, next(iter(run.values()))[:2], flush=True)
        Path(args.out).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
