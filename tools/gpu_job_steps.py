"""One device call: samples of the shipped model with DPM-Solver++(2M) (or --sampler) at several step counts and
guidance scales (200 per class, --seeds), written to $OUT/--out as they come (keys
'variant=<sampler>N,steps=N,w=..,seed=..', for tools/evaluate_samples.py), with the GPU seconds of each run.

    python tools/gpu_job_steps.py --steps 6 8 10 15 25 --w 1 2.5
"""
import argparse, json, os, time
import torch
from ld4lg_edu.pipeline import LatentDiffusionPipeline, load_default

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--steps", type=int, nargs="+", default=[6, 8, 10, 15, 25])
p.add_argument("--w", type=float, nargs="+", default=[1.0, 2.5])
p.add_argument("--per-class", type=int, default=200)
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
p.add_argument("--sampler", default="dpmpp2m", choices=["dpmpp2m", "ddim", "ddpm"])
p.add_argument("--model", default=None, help="a pipeline folder (default: the shipped model)")
p.add_argument("--out", default="samples_steps.json", help="file name under $OUT")
p.add_argument("--variant", default=None, help="the keys' variant name (default: <sampler>N)")
args = p.parse_args()
pipe = (load_default(device="cuda") if args.model is None
        else LatentDiffusionPipeline.from_pretrained(args.model, device="cuda"))
path = os.path.join(os.environ.get("OUT", "."), args.out)
samples = {"ld4lg": {}, "timing": {}}
for w in args.w:
    for steps in args.steps:
        for seed in args.seeds:
            key = f"variant={args.variant or f'{args.sampler}{steps}'},steps={steps},w={w},seed={seed}"
            torch.cuda.synchronize(); start = time.perf_counter()
            samples["ld4lg"][key] = {n: pipe.sample(args.per_class, label=n, guidance_scale=w, sampler=args.sampler,
                                                    steps=steps, seed=seed).texts for n in pipe.label_names}
            torch.cuda.synchronize(); samples["timing"][key] = round(time.perf_counter() - start, 2)
            with open(path + ".tmp", "w") as f: json.dump(samples, f)
            os.replace(path + ".tmp", path)  # what is done survives a kill
            print(key, samples["timing"][key], samples["ld4lg"][key]["animal"][:2], flush=True)
