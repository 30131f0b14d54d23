"""Score the held-out reconstructions of tools/corpus_recipe_job.py runs ($OUT/recipe_ae_<corpus>.json) on a CPU and
add them to nbs/results/corpora_recipe_ae.json, one row per (corpus, recipe), replacing a row of the same name.

    python tools/recipe_ae_rows.py NAME RECIPE recipe_ae_ag_news-local.json [recipe_ae_rocstories-local.json ...]
"""
import json, sys
from pathlib import Path

from ld4lg_edu.ae_training import reconstruction_metrics
from ld4lg_edu.core import atomic_file

name, recipe, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
path = Path("nbs/results/corpora_recipe_ae.json")
table = json.loads(path.read_text()) if path.exists() else {
    "description": "Held-out reconstruction on the paper's corpora (local copies) by the shipped autoencoder "
                   "fine-tuned on each corpus's train split with 96 input positions (tools/corpus_recipe_job.py on "
                   "one H200; scored by tools/recipe_ae_rows.py): BLEU, ROUGE-L and exact matches (%) on the first "
                   "300 test texts, before (the shipped autoencoder as it is) and after.", "rows": []}
for run in runs:
    d = json.loads(Path(run).read_text())
    score = lambda texts: {k: round(v, 2) for k, v in reconstruction_metrics(d["texts"], texts).items()}
    row = {"corpus": d["corpus"], "name": name, "recipe": recipe, "steps": d["steps"],
           "train_decoder": d["config"]["train_decoder"], "max_length": d["config"]["max_length"],
           "train_texts": d["train_texts"], "test_texts": len(d["texts"]), "before": score(d["before"]),
           "after": score(d["after"]), "loss_curve": [[h["step"], round(h["loss"], 4)] for h in d["history"]],
           "seconds": round(d["seconds"])}
    table["rows"] = [r for r in table["rows"] if (r["corpus"], r["name"]) != (row["corpus"], name)] + [row]
    print(row["corpus"], name, "BLEU", row["before"]["bleu"], "->", row["after"]["bleu"])
with atomic_file(path) as tmp: Path(tmp).write_text(json.dumps(table, indent=1))
