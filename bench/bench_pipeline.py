"""End-to-end CPU timings of the shipped model: the README's `ld4lg sample --n 8 --steps 25` (model load excluded and
included) and the explorer's Sample click (4 samples, 25 steps, trajectory recorded, x̂0 decoded at every step).
Prints one table; run: python bench/bench_pipeline.py [--threads 1 2] [--repeats 3]

On a GPU (`--device cuda`): 1000 texts end to end (denoiser steps + decoding: beam 4 in batches of 256, beam 4 in the
pipeline's default batch, 1,024 on a GPU, and greedy) at 10 / 25 / 250 steps for the
shipped model and for a paper-size denoiser (12 x 768, random weights: a timing, not a model) in the same pipeline,
against the autoregressive baseline (course preset) writing as many texts of the same length, greedy and beam 4.
Paper reference (Table 11): 1000 texts in 3 min 20 s at 250 steps on an A6000."""
import argparse, statistics, time
import torch
from ld4lg_edu.pipeline import load_default


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)


def synced(fn, device):
    "Seconds of `fn()`, the GPU synchronised before and after."
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync(); t = time.perf_counter(); out = fn(); sync()
    return time.perf_counter() - t, out


def gpu_table(n: int, device: str = "cuda", step_counts=(10, 25, 250)):
    from ld4lg_edu.baseline import ARBaseline
    from ld4lg_edu.denoiser import Denoiser, DenoiserConfig
    from ld4lg_edu.pipeline import LatentDiffusionPipeline
    pipe = load_default(device=device)
    torch.manual_seed(0)
    big = Denoiser(DenoiserConfig.preset("paper", num_classes=len(pipe.label_names))).to(device).eval()
    paper = LatentDiffusionPipeline(pipe.autoencoder, big, pipe.schedule, label_names=pipe.label_names, device=device)
    rows, lengths = [], []
    decodings = {"beam 4, batches of 256": {"batch_size": 256}, "beam 4, default batch": {},  # 1,024 at once on a GPU
                 "greedy, default batch": {"num_beams": 1}}
    for name, p in (("LD4LG shipped 8x256", pipe), ("LD4LG paper-size 12x768", paper)):
        for how in decodings.values():  # warm-up at the timed batch shapes
            p.sample(n, label="animal", guidance_scale=2.0, steps=2, seed=0, **how)
        for steps in step_counts:
            for decoding, how in decodings.items():
                seconds, result = synced(lambda: p.sample(n, label="animal", guidance_scale=2.0, steps=steps, seed=0,
                                                          **how), device)
                lengths += [len(p.autoencoder.tokenizer(t)["input_ids"]) for t in result.texts]
                rows.append((name, f"{steps} steps, w=2, {decoding}", seconds))
                print(f"{name:<30}{rows[-1][1]:<34}{seconds:>8.2f}", flush=True)
    length = round(sum(lengths) / len(lengths))
    ar = ARBaseline.build("course", label_names=pipe.label_names, tokenizer=pipe.autoencoder.tokenizer)
    ar.model.to(device).eval()
    head = torch.tensor([prefix_of(ar)] * n, device=device)
    for beams, batch in ((1, n), (4, 250)):
        def write():
            with torch.no_grad():
                return [ar.model.generate(head[i:i + batch], num_beams=beams, do_sample=False, min_new_tokens=length,
                                          max_new_tokens=length, pad_token_id=ar.tokenizer.pad_token_id) for i in range(0, n, batch)]
        write()  # warm-up
        seconds, _ = synced(write, device)
        rows.append((f"AR baseline (course, {sum(p.numel() for p in ar.model.parameters()) / 1e6:.1f}M)",
                     f"{length} tokens, {'greedy' if beams == 1 else 'beam 4'}", seconds))
        print(f"{rows[-1][0]:<30}{rows[-1][1]:<34}{seconds:>8.2f}", flush=True)
    print(f"\n{n} texts on {torch.cuda.get_device_name() if device == 'cuda' else 'CPU'}, torch {torch.__version__}; LD4LG texts average {length} tokens")
    print(f"{'model':<30}{'job':<34}{'seconds':>8}")
    for model, job, seconds in rows: print(f"{model:<30}{job:<34}{seconds:>8.2f}")


def prefix_of(ar):
    from ld4lg_edu.baseline import prefix_ids
    return prefix_ids(ar.tokenizer, ar.label_names, "animal")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--texts", type=int, default=1000, help="texts per row on the GPU")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.device == "cuda": return gpu_table(args.texts)
    t = time.perf_counter(); pipe = load_default(device="cpu"); load_s = time.perf_counter() - t
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        pipe.sample(2, label="animal", steps=5, seed=0)  # warm-up
        rows.append((threads, "sample n=8, 25 steps, w=2 (beam 4 decode)",
                     timed(lambda: pipe.sample(8, label="animal", guidance_scale=2.0, steps=25, seed=0), args.repeats)))
        rows.append((threads, "sample n=8, 25 steps, w=2, greedy decode",
                     timed(lambda: pipe.sample(8, label="animal", guidance_scale=2.0, steps=25, seed=0, num_beams=1), args.repeats)))
        rows.append((threads, "explorer click: n=4, 25 steps, trajectory decoded every step",
                     timed(lambda: pipe.sample(4, label="food", guidance_scale=2.0, steps=25, seed=0, return_trajectory=True), args.repeats)))
        rows.append((threads, "explorer click: same, x̂0 decoded every 5th step",
                     timed(lambda: pipe.sample(4, label="food", guidance_scale=2.0, steps=25, seed=0, return_trajectory=True, decode_every=5), args.repeats)))
    print(f"model load: {load_s:.2f} s (torch {torch.__version__}, {torch.get_num_threads()} threads max)")
    print(f"{'threads':>7}  {'job':<62} {'seconds':>8}")
    for threads, job, s in rows: print(f"{threads:>7}  {job:<62} {s:>8.2f}")


if __name__ == "__main__":
    main()
