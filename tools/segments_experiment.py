"""The device half of chapter 09c's experiment (tools/gpu_job_segments.sh runs it): sample and reconstruct with the
trained models and write the texts; tools/segments_results.py scores them on a CPU into nbs/results/segments_*.json.

    python tools/segments_experiment.py seg RUN_DIR --corpus rocstories-local --out seg.json      # a segment pipeline
    python tools/segments_experiment.py single PIPE_DIR --out single.json       # a one-latent pipeline
    python tools/segments_experiment.py curve AE_DIR --out curve.json            # BLEU vs length, one latent
    python tools/segments_experiment.py ppl AR_DIR --samples a.json --out ppl.json  # AR samples + perplexity
"""
from __future__ import annotations
import argparse, json, os, time
from pathlib import Path

import torch

DEVICE = os.environ.get("DEVICE", "cuda")


def sync():
    if DEVICE == "cuda": torch.cuda.synchronize()


def test_texts(corpus: str, limit: int | None = None) -> list[str]:
    from ld4lg_edu.data import load_corpus
    return load_corpus(corpus).texts("test")[:limit]


def write(path, data):
    Path(path).write_text(json.dumps(data))
    print(f"wrote {path}", flush=True)


def run_seg(args):
    "Samples (learned stop, seeds) and held-out reconstructions of a segment pipeline."
    from ld4lg_edu.segments import SegmentDiffusionPipeline, split_sentences
    pipe = SegmentDiffusionPipeline.from_pretrained(Path(args.path) / "pipeline", device=DEVICE)
    out = {"model": args.name, "corpus": args.corpus, "max_segments": pipe.max_segments, "samples": {}, "seconds": {}}
    for seed in args.seeds:
        sync(); t = time.perf_counter()
        out["samples"][f"seed={seed}"] = pipe.sample(args.n, seed=seed, batch_size=1024).sentences
        sync(); out["seconds"][f"seed={seed}"] = time.perf_counter() - t
    if args.fixed:
        out["fixed"] = {str(k): pipe.sample(args.fixed_n, segments=k, seed=0, batch_size=1024).sentences
                        for k in args.fixed}
    refs = [t for t in test_texts(args.corpus, args.limit) if len(split_sentences(t)) <= pipe.max_segments]
    out["reconstruction"] = {"references": refs, "hypotheses": pipe.reconstruct(refs, batch_size=1024)}
    out["history"] = json.loads((Path(args.path) / "diffusion" / "ema_denoiser" / "denoiser.json").read_text())["extra"]
    write(args.out, out)


def run_single(args):
    "Samples of a one-latent pipeline and its reconstructions of the held-out stories."
    from ld4lg_edu.pipeline import LatentDiffusionPipeline
    pipe = LatentDiffusionPipeline.from_pretrained(args.path, device=DEVICE)
    out = {"model": args.name, "corpus": args.corpus, "samples": {}, "seconds": {}}
    for seed in args.seeds:
        sync(); t = time.perf_counter()
        out["samples"][f"seed={seed}"] = pipe.sample(args.n, seed=seed, batch_size=1024).texts
        sync(); out["seconds"][f"seed={seed}"] = time.perf_counter() - t
    refs = test_texts(args.corpus, args.limit)
    out["reconstruction"] = {"references": refs, "hypotheses": pipe.reconstruct(refs, batch_size=1024)}
    write(args.out, out)


def run_curve(args):
    "Reconstructions of the first k sentences of held-out stories by one autoencoder (one latent per prefix)."
    from ld4lg_edu.autoencoder import load_autoencoder
    from ld4lg_edu.segments import split_sentences
    ae = load_autoencoder(args.path, device=DEVICE).eval()
    stories = [split_sentences(t) for t in test_texts(args.corpus)]
    stories = [s for s in stories if len(s) == 5][:args.limit]
    rows = {}
    for k in range(1, 6):
        refs = [" ".join(s[:k]) for s in stories]
        tokens = [len(ids) for ids in ae.tokenizer(refs)["input_ids"]]
        rows[k] = {"references": refs, "hypotheses": ae.reconstruct(refs, batch_size=1024), "tokens": tokens}
    write(args.out, {"autoencoder": args.name, "max_length": ae.config.max_length,
                     "latent_shape": list(ae.latent_shape), "prefixes": rows})


def run_ppl(args):
    "The AR baseline's own samples, and the perplexity under it of the stories in the sample files and the references."
    from ld4lg_edu.baseline import ARBaseline
    from ld4lg_edu.metrics import load_causal_lm, token_nll
    import numpy as np
    ar = ARBaseline.from_pretrained(args.path, device=DEVICE)
    ar_samples = {f"seed={s}": ar.sample(args.n, seed=s, batch_size=500) for s in args.seeds}
    write(Path(args.out).with_name("segments_ar_samples.json"), {"model": "ar", "samples": ar_samples})
    model, tok = load_causal_lm(args.path, device=DEVICE)
    def ppl(texts):
        texts = [t for t in texts if t.strip()]
        nll, counts = token_nll(texts, model, tok, batch_size=256)
        return {"mean": float(np.mean(np.exp(nll / counts))), "corpus": float(np.exp(nll.sum() / counts.sum())),
                "texts": len(texts)}
    out = {"ar": {k: ppl(v) for k, v in ar_samples.items()}, "reference": ppl(test_texts(args.corpus, args.limit))}
    for f in args.samples:
        if not Path(f).exists(): print(f"missing {f}"); continue
        data = json.loads(Path(f).read_text())
        join = lambda x: " ".join(x) if isinstance(x, list) else x
        out[data["model"]] = {k: ppl([join(x) for x in v]) for k, v in data["samples"].items()}
    write(args.out, out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["seg", "single", "curve", "ppl"])
    p.add_argument("path")
    p.add_argument("--name", default=None)
    p.add_argument("--corpus", default="rocstories-local")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--fixed", type=int, nargs="*", default=[])
    p.add_argument("--fixed-n", type=int, default=100)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--samples", nargs="*", default=[])
    p.add_argument("--out", required=True)
    args = p.parse_args()
    args.name = args.name or Path(args.path).name
    {"seg": run_seg, "single": run_single, "curve": run_curve, "ppl": run_ppl}[args.what](args)


if __name__ == "__main__":
    main()
