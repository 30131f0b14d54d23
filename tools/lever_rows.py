"""Add the frozen-encoder lever's rows (tools/encoder_lever.py results, scored by tools/evaluate_samples.py) to
nbs/results/latent_ablation.json, replacing rows of the same name.

    python tools/lever_rows.py NAME RECIPE LEVER.json EVAL.json [DENOISER_FINAL_LOSS]
"""
import json, sys
from pathlib import Path

from ld4lg_edu.core import atomic_file

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
path = Path("nbs/results/latent_ablation.json")
table = json.loads(path.read_text())
table["rows"] = [r for r in table["rows"] if r["variant"] != name] + [row]
with atomic_file(path) as tmp: Path(tmp).write_text(json.dumps(table, indent=1))
print(name, {k: row[k] for k in ("validity", "reconstruction_bleu")}, row["sample_metrics"])
