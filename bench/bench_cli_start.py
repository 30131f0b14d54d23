"""Where the seconds of `ld4lg sample --n 8 --label animal` go on a CPU: the whole command as a user runs it (a fresh
process, start to exit), then each phase timed inside one fresh process: importing torch, importing transformers' BART
modules, loading the shipped pipeline (its students only for --sampler distilled, as the command does), the guided
denoiser passes (the model's own steps unless --steps), and beam-4 decoding, at the command's default guidance for a
class (w = 2.5). Median of --repeats runs.

    python bench/bench_cli_start.py --repeats 3 [--steps N] [--sampler dpmpp2m] [--model default]
    python bench/bench_cli_start.py --sampler distilled --steps 4 --model runs/distilled/pipeline
"""
import argparse, json, os, statistics, subprocess, sys, time

PHASES = r'''
import json, sys, time
t0 = time.perf_counter(); import torch; t1 = time.perf_counter()
from transformers.models.bart import modeling_bart; t2 = time.perf_counter()
from ld4lg_edu.pipeline import LatentDiffusionPipeline
sampler, model = sys.argv[1], sys.argv[3]
pipe = LatentDiffusionPipeline.from_pretrained(model, students=sampler == "distilled"); t3 = time.perf_counter()
steps = int(sys.argv[2]) if sys.argv[2] != "model" else pipe.steps
result = pipe.sample(8, label="animal", guidance_scale=2.5, steps=steps, sampler=sampler, seed=0)
t4 = time.perf_counter()
pipe.decode(result.latents); t5 = time.perf_counter()  # the decoding alone, again: the sampling is the rest
print(json.dumps({"import torch": t1 - t0, "import BART (transformers)": t2 - t1, "load the pipeline": t3 - t2,
                  f"{steps} denoiser steps": (t4 - t3) - (t5 - t4), "beam-4 decoding": t5 - t4}))
'''


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's own)")
    p.add_argument("--sampler", default="dpmpp2m")
    p.add_argument("--model", default="default",
                   help="'default' or a pipeline folder (e.g. one with a distilled student)")
    args = p.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    whole, phases = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        steps = [] if args.steps is None else ["--steps", str(args.steps)]
        subprocess.run([sys.executable, "-m", "ld4lg_edu", "sample", "--n", "8", "--label", "animal", *steps,
                        "--sampler", args.sampler, "--model", args.model], check=True, capture_output=True, env=env)
        whole.append(time.perf_counter() - t)
        out = subprocess.run([sys.executable, "-c", PHASES, args.sampler, str(args.steps or "model"), args.model],
                             check=True, capture_output=True, text=True, env=env)
        phases.append(json.loads(out.stdout.strip().splitlines()[-1]))
    steps = "" if args.steps is None else f" --steps {args.steps}"
    print(f"ld4lg sample --n 8 --label animal --sampler {args.sampler}{steps} --model {args.model}: median of "
          f"{args.repeats} fresh processes, {os.cpu_count()} CPU(s)")
    print(f"{'whole command, start to exit':34s} {statistics.median(whole):6.2f} s   {[round(w, 2) for w in whole]}")
    for name in phases[0]:
        print(f"  {name:32s} {statistics.median(r[name] for r in phases):6.2f} s")


if __name__ == "__main__":
    main()
