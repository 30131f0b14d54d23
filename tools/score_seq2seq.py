"""Score the texts of tools/gpu_job_seq2seq.sh on a CPU into nbs/results/seq2seq_eval.json (chapter 09b).
Reads DIR/seq2seq_{ae,ar,generate}.json where present; a system whose file is absent is listed under "not_measured".
MBR (BLEU) over each source's k candidates is done here; "one sample" is the first candidate.
Usage: python tools/score_seq2seq.py DIR [--recon N] (N held-out targets reconstructed by the shipped autoencoder on
this CPU when DIR has no seq2seq_ae.json)."""
import argparse, json
from pathlib import Path

from ld4lg_edu.core import atomic_file
from ld4lg_edu.data import load_corpus
from ld4lg_edu.pipeline import mbr_select
from ld4lg_edu.autoencoder import as_autoencoder
from ld4lg_edu.seq2seq import seq2seq_pairs, seq2seq_scores

p = argparse.ArgumentParser()
p.add_argument("dir"); p.add_argument("--recon", type=int, default=200)
p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "nbs" / "results" / "seq2seq_eval.json"))
args = p.parse_args()
folder = Path(args.dir)
read = lambda name: json.loads((folder / f"seq2seq_{name}.json").read_text()) if (folder / f"seq2seq_{name}.json").exists() else None
ae, ar, gen = read("ae"), read("ar"), read("generate")
qqp = load_corpus("qqp-local")
size = lambda split, default: len(next(iter(gen[split].values()))) if gen else len(ar[split]) if ar else default
n_test = size("test", 1000)
splits = {"valid": seq2seq_pairs(qqp, "valid", limit=size("valid", 98)), "test": seq2seq_pairs(qqp, "test", limit=n_test)}
r1 = lambda d: {k: round(v, 2) for k, v in d.items()}
result = {"setup": {"train_pairs": len(qqp.splits["train"]), "train_pairs_both_directions": 2 * len(qqp.splits["train"]),
                    "valid_pairs": len(splits["valid"][0]), "test_pairs_scored": n_test,
                    "held_out": "qqp_test_2000.jsonl (the first test_pairs_scored pairs); never trained or tuned on",
                    "k": gen["k"] if gen else None},
          "valid": [], "test": [], "not_measured": []}
for split, (sources, refs) in splits.items():
    result[split].append({"system": "copy the source", **r1(seq2seq_scores(sources, refs))})
    if ar: result[split].append({"system": "course LM fine-tuned, beam 4", **r1(seq2seq_scores(ar[split][:len(refs)], refs))})
    if not gen: continue
    for w, cands in gen[split].items():
        picks = [c[mbr_select(c, "bleu")[0]] for c in cands]
        scores = seq2seq_scores(picks, refs, cands)
        result[split].append({"system": f"LD4LG, w={w}, MBR of {len(cands[0])}", "w": float(w), "mbr": True, **r1(scores)})
        one = seq2seq_scores([c[0] for c in cands], refs)
        result[split].append({"system": f"LD4LG, w={w}, one sample", "w": float(w), "mbr": False,
                              **r1({**one, "self_bleu": scores["self_bleu"]})})
if not ar: result["not_measured"].append("course LM fine-tuned (AR baseline)")
if not gen: result["not_measured"].append("LD4LG seq2seq (the GPU job's generate stage)")
if ae:
    result["reconstruction"] = {"texts": len(ae["texts"]), "autoencoder_steps": ae["steps"],
                                "shipped": r1(seq2seq_scores(ae["before"], ae["texts"])),
                                "fine_tuned_on_qqp": r1(seq2seq_scores(ae["after"], ae["texts"]))}
elif args.recon:
    targets = splits["test"][1][:args.recon]
    result["reconstruction"] = {"texts": len(targets), "shipped": r1(seq2seq_scores(as_autoencoder("default").reconstruct(targets), targets))}
    result["not_measured"].append("reconstruction through the autoencoder fine-tuned on QQP")
test_src, test_ref = splits["test"]
if gen or ar:
    best = max((w for w in gen["valid"]), key=lambda w: next(r["bleu"] for r in result["valid"] if r.get("w") == float(w) and r["mbr"])) if gen else None
    result["w_chosen_on_valid"] = None if best is None else float(best)
    result["examples"] = [{"source": s, "reference": r, "ld4lg": None if not gen else mbr_pick,
                           "ar": None if not ar else ar["test"][i]}
                          for i, (s, r, mbr_pick) in enumerate(zip(test_src, test_ref,
                              [c[mbr_select(c, "bleu")[0]] for c in gen["test"][best]] if gen else [None] * len(test_src)))][:12]
result["training"] = {name: d.get("history", [])[-1:] for name, d in (("ar", ar), ("ae", ae)) if d}
with atomic_file(args.out) as tmp: Path(tmp).write_text(json.dumps(result, indent=1))
print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=1))
