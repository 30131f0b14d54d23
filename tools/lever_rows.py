"""Add the frozen-encoder lever's rows (tools/encoder_lever.py results, scored by tools/evaluate_samples.py) to
nbs/results/latent_ablation.json, replacing rows of the same name; --stage1 adds a stage-1-only run (encoder_lever.py
--stage1-only) to its `frozen_encoder_stage1` list instead.

    python tools/lever_rows.py NAME RECIPE LEVER.json EVAL.json [DENOISER_FINAL_LOSS]
    python tools/lever_rows.py --stage1 NAME RECIPE LEVER.json
"""
import json, sys
from pathlib import Path

from ld4lg_edu.core import atomic_file

path = Path("nbs/results/latent_ablation.json")
table = json.loads(path.read_text())
if sys.argv[1] == "--stage1":
    name, recipe, lever = sys.argv[2:5]
    lever = json.loads(Path(lever).read_text())
    rec = lever["reconstruction"]
    row = {"variant": name, "recipe": recipe, "train_loss": round(lever["ae_history"][-1]["loss"], 4),
           "loss_curve": [[h["step"], round(h["loss"], 4)] for h in lever["ae_history"]],
           "reconstruction_bleu": round(rec["bleu"], 2), "reconstruction_rougeL": round(rec["rougeL"], 2),
           "reconstruction_exact": round(rec["exact"], 1)}
    table["frozen_encoder_stage1"] = [r for r in table["frozen_encoder_stage1"] if r["variant"] != name] + [row]
    with atomic_file(path) as tmp: Path(tmp).write_text(json.dumps(table, indent=1))
    print(name, {k: row[k] for k in ("train_loss", "reconstruction_bleu")})
    sys.exit()
name, recipe, lever, scored = sys.argv[1:5]
lever, scored = json.loads(Path(lever).read_text()), json.loads(Path(scored).read_text())
row = {"variant": name, "recipe": recipe, "latent_shape": lever["latent_shape"],
       "validity": {k: round(v["all"], 4) for k, v in lever["validity"].items()},
       "reconstruction_bleu": round(lever["reconstruction"]["bleu"], 2),
       "reconstruction_rougeL": round(lever["reconstruction"]["rougeL"], 2),
       "interpolation": [{"tau": r["tau"], "validity": r["validity"]} for r in lever["interpolation"]],
       "robustness": lever["robustness"],
       "examples": {k: run["animal"][:3] for k, run in lever["samples"].items() if k.startswith("w=2.0")},
       "sample_metrics": {f"w={r['guidance_w']},seed={r['seed']}": {k: round(r[k], 4) for k in
                                                                     ("mauve", "class_accuracy", "memorization",
                                                                      "diversity")}
                          for r in scored["rows"] if r["model"] == "ld4lg"}}
if len(sys.argv) > 5: row["denoiser_final_loss"] = float(sys.argv[5])
if lever.get("ae_history"): row["autoencoder_final_loss"] = round(lever["ae_history"][-1]["loss"], 4)
table["rows"] = [r for r in table["rows"] if r["variant"] != name] + [row]
with atomic_file(path) as tmp: Path(tmp).write_text(json.dumps(table, indent=1))
print(name, {k: row[k] for k in ("validity", "reconstruction_bleu")}, row["sample_metrics"])
