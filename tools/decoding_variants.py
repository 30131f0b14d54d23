"""Does the way latents become words move MAUVE at w = 1? (issue: text that reads as English.)

The shipped model samples latents once per (class, seed) with DPM-Solver++(2M), 25 steps (--steps), w = 1; the same
latents are then decoded several ways: beam 4 as shipped (repetition penalty 1.2, no repeated 3-grams), beam 4 without
those two rules, greedy, nucleus sampling (p = 0.9), and beam 4 that may not write the same token twice in a row. One
more run samples with DDIM at 100 steps (beam 4). --variants picks among them. The output is a samples file keyed
"w=1.0,seed=S,variant=V" that tools/evaluate_samples.py scores on a CPU.

    python tools/decoding_variants.py --out /tmp/out/samples_decoding.json          # on the GPU
    python tools/evaluate_samples.py --samples samples_decoding.json --out nbs/results/decoding_eval.json
"""
import argparse, json, time
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from ld4lg_edu.core import atomic_file
from ld4lg_edu.pipeline import LatentDiffusionPipeline


class NoStutter(LogitsProcessor):
    "Forbid the token just written from coming again at once ('family family'), which human definitions never do."
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores.scatter(1, input_ids[:, -1:], float("-inf"))  # input_ids: (B·beams, t), scores: (B·beams, V)


DECODINGS = {
    "beam4": {},                                                   # the pipeline's defaults
    "beam4-plain": {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0},
    "greedy": {"num_beams": 1},
    "nucleus0.9": {"num_beams": 1, "do_sample": True, "top_p": 0.9, "top_k": 0},
    "beam4-nostutter": {"logits_processor": LogitsProcessorList([NoStutter()])},
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--model", default="default")
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=25, help="DPM-Solver++(2M) steps of the latents")
    variants = list(DECODINGS) + ["ddim100"]
    p.add_argument("--variants", nargs="+", default=variants, choices=variants)
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = LatentDiffusionPipeline.from_pretrained(args.model, device=device)
    runs, start = {}, time.perf_counter()
    for seed in args.seeds:
        for name in pipe.label_names:
            latents = pipe.sample(args.per_class, label=name, guidance_scale=1.0, steps=args.steps, sampler="dpmpp2m",
                                  seed=seed).latents
            for variant in [v for v in args.variants if v in DECODINGS]:  # in the order asked for
                torch.manual_seed(seed)  # nucleus sampling draws from torch's generator
                texts = pipe.decode(latents, **DECODINGS[variant])
                runs.setdefault(f"w=1.0,seed={seed},variant={variant}", {})[name] = texts
            if "ddim100" in args.variants:
                runs.setdefault(f"w=1.0,seed={seed},variant=ddim100", {})[name] = pipe.sample(
                    args.per_class, label=name, guidance_scale=1.0, steps=100, sampler="ddim", seed=seed).texts
        print(f"seed {seed} done after {time.perf_counter() - start:.0f} s", flush=True)
    with atomic_file(args.out) as tmp: Path(tmp).write_text(json.dumps({"ld4lg": runs, "ar": {}, "timing": {}}))
    for key in runs: print(key, runs[key][pipe.label_names[0]][:2])


if __name__ == "__main__":
    main()
