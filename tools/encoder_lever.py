"""The frozen-encoder lever of the latent-space ablation (chapter 03b), one GPU run per row: an autoencoder whose
compression f_φ reads a frozen, genuinely pretrained sentence encoder (all-MiniLM-L6-v2, 6 layers × 384, cut to the
WordNet vocabulary by tools/prune_minilm.py) instead of the course LM's own encoder. The course LM's decoder and the
reconstruction network g_ψ are unchanged, and so is the recipe of the ablation's other rows (tools/gpu_job_latents.sh):
the course preset at ℓ × d_ae = 32 × 64, 4,000 steps × 256 on the 88k WordNet glosses; then the fixed short stage-2 run
(paper preset at 8 × 256, 8,000 steps × 256, lr 3e-4, compiled, one CUDA graph a step) and tools/latent_ablation.py's
scores. `shipped` runs stage 2 and the scores on the shipped autoencoder (the same stage-1 recipe on the LM's own
encoder): the control row. `hybrid` gives f_φ both encoders' states side by side; --train-decoder tunes the LM's decoder
with f_φ and g_ψ.

    python tools/encoder_lever.py minilm --minilm .minilm/minilm --out $OUT/minilm.json
    python tools/encoder_lever.py shipped --out $OUT/shipped_short.json
    timeout 500 python tools/encoder_lever.py minilm --ae-steps 100000 ...; then the same with --resume
"""
import argparse, json, subprocess, time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from ld4lg_edu.ae_training import reconstruction_metrics
from ld4lg_edu.autoencoder import AutoencoderConfig, LanguageAutoencoder, load_autoencoder, save_autoencoder
from ld4lg_edu.blocks import PerceiverCompression
from ld4lg_edu.core import atomic_file, autocast
from ld4lg_edu.data import load_corpus
from ld4lg_edu.diffusion import LatentDataset, load_denoiser, read_denoiser_info
from ld4lg_edu.lm import decoder_loss, frozen, lm_labels, load_lm
from ld4lg_edu.pipeline import LatentDiffusionPipeline
from ld4lg_edu.schedule import schedule_from_config
from ld4lg_edu.train_recipe import TensorData
from ld4lg_edu.training import TrainConfig, fit

from latent_ablation import score

SHIPPED_AE = "ld4lg_edu/assets/default_model/autoencoder"


class FrozenEncoderAutoencoder(LanguageAutoencoder):
    "The course LM's decoder and g_ψ, with f_φ reading a separate frozen `encoder` (a BERT), not the LM's encoder."
    trim_features = True  # batches are cut to their longest row

    def __init__(self, lm, tokenizer, config: AutoencoderConfig, encoder, encoder_tokenizer):
        super().__init__(lm, tokenizer, config)
        self.frozen_encoder = (frozen(encoder),)  # a tuple, so it is not a submodule: neither trained nor saved
        self.encoder_tokenizer = encoder_tokenizer
        self.compression = PerceiverCompression(self.feature_width, config.dim, config.num_latents,
                                                config.latent_dim, config.compression_layers, config.heads,
                                                self.feature_length, config.ff_mult, config.normalize)

    @property
    def feature_length(self) -> int: return self.config.max_length  # L of the features f_φ reads

    @property
    def feature_width(self) -> int: return self.frozen_encoder[0].config.hidden_size  # their d

    @torch.no_grad()
    def encoder_features(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        "Frozen encoder features (B, L_e, d_enc) of `texts` and their attention mask (B, L_e)."
        batch = self.encoder_tokenizer(list(texts), padding=True, truncation=True, max_length=self.config.max_length,
                                       return_tensors="pt").to(self.device)
        with autocast(self.device):
            hidden = self.frozen_encoder[0](**batch).last_hidden_state  # (B, L_e, d_enc)
        return hidden, batch["attention_mask"]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token cross-entropy of the LM decoding g_ψ(f_φ(E(w))). `batch`: `features` (B, L_e, d_enc), `feature_mask`
        (B, L_e), `input_ids`, `attention_mask` (B, L) of the LM's tokens."""
        features, mask = batch["features"].to(self.compression.latents.dtype), batch["feature_mask"]
        seen = self.hide_tokens(mask) if self.training else mask     # (B, L_e): states f_φ may read
        latents = self.compression(features, seen)                   # x = f_φ(E(w)): (B, ℓ, d_ae)
        if self.training: latents = self.add_latent_noise(latents)
        hidden = self.reconstruction(latents)                        # ĥ = g_ψ(x): (B, ℓ, d_model)
        return decoder_loss(self.lm, hidden, lm_labels(batch["input_ids"], batch["attention_mask"]))

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        "Latents x (B, ℓ, d_ae), float32, of `texts`."
        out = [torch.zeros(0, *self.latent_shape, device=self.device)]
        for i in range(0, len(texts), batch_size):
            features, mask = self.encoder_features(texts[i:i + batch_size])
            with autocast(self.device):
                out.append(self.compression(features.to(self.compression.latents.dtype), mask).float())
        return torch.cat(out)


class HybridEncoderAutoencoder(FrozenEncoderAutoencoder):
    """f_φ reads the frozen MiniLM's states and the course LM's own encoder states side by side: (B, 2L, d_enc +
    d_model), MiniLM's in the first L positions and d_enc channels, the LM's (which keep the text's casing, which the
    uncased MiniLM drops) in the last L positions and d_model channels."""
    trim_features = False  # the LM's states start at position L: batches keep the full 2L

    @property
    def feature_length(self) -> int: return 2 * self.config.max_length

    @property
    def feature_width(self) -> int: return self.frozen_encoder[0].config.hidden_size + self.d_model

    @torch.no_grad()
    def encoder_features(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        "Both encoders' features (B, 2L, d_enc + d_model) of `texts` and their attention mask (B, 2L)."
        L = self.config.max_length
        minilm, minilm_mask = super().encoder_features(texts)  # (B, L_e, d_enc), (B, L_e)
        tokens = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=L,
                                return_tensors="pt").to(self.device)
        with autocast(self.device):
            own = self.features(tokens["input_ids"], tokens["attention_mask"])  # (B, L, d_model)
        minilm = F.pad(minilm, (0, own.shape[-1], 0, L - minilm.shape[1]))      # (B, L, d_enc + d_model)
        own = F.pad(own.to(minilm.dtype), (minilm.shape[-1] - own.shape[-1], 0))  # (B, L, d_enc + d_model)
        mask = torch.cat([F.pad(minilm_mask, (0, L - minilm_mask.shape[1])), tokens["attention_mask"]], 1)  # (B, 2L)
        return torch.cat([minilm, own], 1), mask


def training_data(ae: FrozenEncoderAutoencoder, texts: list[str], batch_size: int = 512) -> TensorData:
    """Encoder features and LM tokens of `texts`, each padded to its full length; `lengths` is the longer of the two per
    row (the LM's tokens alone when the features keep their full length)."""
    L, L_f = ae.config.max_length, ae.feature_length
    features = torch.zeros(len(texts), L_f, ae.feature_width, dtype=torch.bfloat16, device=ae.device)
    feature_mask = torch.zeros(len(texts), L_f, dtype=torch.long, device=ae.device)
    for i in range(0, len(texts), batch_size):
        h, m = ae.encoder_features(texts[i:i + batch_size])  # (b, L_e, d_enc), (b, L_e)
        features[i:i + len(h), :h.shape[1]], feature_mask[i:i + len(h), :h.shape[1]] = h.to(torch.bfloat16), m
    tokens = ae.tokenizer(texts, padding="max_length", truncation=True, max_length=L, return_tensors="pt")
    ids, mask = tokens["input_ids"].to(ae.device), tokens["attention_mask"].to(ae.device)
    if ae.trim_features:
        lengths, padded = torch.maximum(feature_mask.sum(1), mask.sum(1)), ("features", "feature_mask")
    else: lengths, padded = mask.sum(1), ()
    return TensorData(lengths=lengths.cpu(), padded=padded + ("input_ids", "attention_mask"),
                      features=features, feature_mask=feature_mask, input_ids=ids, attention_mask=mask)


def train_minilm_autoencoder(minilm: str, device: str, steps: int, checkpoints: Path, resume: bool = False,
                             hybrid: bool = False, **shape) -> tuple[FrozenEncoderAutoencoder, list[dict]]:
    """Stage 1 of the lever: f_φ, g_ψ trained on the frozen MiniLM's features of the 88k glosses (the ablation's recipe;
    `shape` overrides the course preset, e.g. dim=256, compression_layers=3), checkpointed in `checkpoints`."""
    config = AutoencoderConfig.preset("course", **{"num_latents": 32, "latent_dim": 64, "steps": steps, **shape})
    lm, tokenizer = load_lm("default", device=device)  # the shipped course LM
    encoder = AutoModel.from_pretrained(minilm, dtype=torch.bfloat16, add_pooling_layer=False).to(device)
    kind = HybridEncoderAutoencoder if hybrid else FrozenEncoderAutoencoder
    ae = kind(lm, tokenizer, config, encoder, AutoTokenizer.from_pretrained(minilm)).to(device)
    data = training_data(ae, load_corpus("wordnet-glosses").texts("train"))
    train = TrainConfig(steps=steps, batch_size=config.batch_size, lr=config.lr, weight_decay=config.weight_decay,
                        warmup_steps=config.warmup_steps, decay="linear", grad_clip=1.0, compile=True,
                        log_every=max(1, steps // 20), checkpoint_every=min(steps, 2000))
    run = fit(ae, lambda model, batch: model(batch), data, train, out_dir=checkpoints, resume=resume,
              overwrite=not resume, config_to_save={"autoencoder": shape, "encoder": minilm, "hybrid": hybrid})
    return ae, run.history


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("encoder", choices=["minilm", "hybrid", "shipped"], help="hybrid: MiniLM's and the LM's states")
    p.add_argument("--minilm", default=".minilm/minilm", help="the pruned MiniLM folder (tools/prune_minilm.py)")
    p.add_argument("--out", required=True); p.add_argument("--runs", default="/tmp/runs/lever")
    p.add_argument("--ae-steps", type=int, default=4000); p.add_argument("--stage2-steps", type=int, default=8000)
    p.add_argument("--ae-dim", type=int, default=None, help="width of f_φ and g_ψ (default: the course preset's 128)")
    p.add_argument("--ae-layers", type=int, default=None, help="layers of f_φ and of g_ψ (default: 2)")
    p.add_argument("--latent-noise", type=float, default=None, help="AutoencoderConfig.latent_noise (default 0)")
    p.add_argument("--feature-mask", type=float, default=None, help="AutoencoderConfig.feature_mask (default 0)")
    p.add_argument("--train-decoder", action="store_true", help="train the LM's decoder too (AutoencoderConfig)")
    p.add_argument("--resume", action="store_true", help="continue stage 1 from its checkpoints (a call cut short)")
    p.add_argument("--save", default=None, help="also save the autoencoder (save_autoencoder: f_φ, g_ψ, a tuned LM) "
                   "to this folder; the frozen encoder is named in its frozen_encoder.json")
    p.add_argument("--stage1-only", action="store_true", help="stop after stage 1 and held-out reconstruction")
    args = p.parse_args()
    stage1 = {"--resume": args.resume, "--save": args.save, "--ae-dim": args.ae_dim,
              "--ae-layers": args.ae_layers, "--latent-noise": args.latent_noise, "--feature-mask": args.feature_mask,
              "--train-decoder": args.train_decoder}
    given = [k for k, v in stage1.items() if v not in (None, False)]
    if args.encoder == "shipped" and given:
        p.error(f"{', '.join(given)}: options of the MiniLM row's stage 1; the shipped row trains no autoencoder, "
                "so drop them")
    device, runs, start = "cuda" if torch.cuda.is_available() else "cpu", Path(args.runs) / args.encoder, time.time()
    history = []
    if args.encoder != "shipped":
        shape = dict(dim=args.ae_dim, compression_layers=args.ae_layers, reconstruction_layers=args.ae_layers,
                     latent_noise=args.latent_noise, feature_mask=args.feature_mask,
                     train_decoder=args.train_decoder or None)
        shape = {k: v for k, v in shape.items() if v is not None}
        ae, history = train_minilm_autoencoder(args.minilm, device, args.ae_steps, runs / "ae", args.resume,
                                               args.encoder == "hybrid", **shape)
        if args.save:
            save_autoencoder(ae, args.save)
            with atomic_file(Path(args.save) / "frozen_encoder.json") as tmp:
                Path(tmp).write_text(json.dumps({"encoder": args.minilm, "hybrid": args.encoder == "hybrid"}))
    else: ae = load_autoencoder(SHIPPED_AE, device=device)
    ae.eval()
    print(args.encoder, f"stage 1 done at {time.time() - start:.0f} s", history[-1:] if history else "", flush=True)
    if args.stage1_only:
        held_out = load_corpus("wordnet").texts("test")[:1000]
        out = {"name": args.encoder, "autoencoder": dict(vars(ae.config)), "ae_history": history,
               "reconstruction": reconstruction_metrics(held_out, ae.reconstruct(held_out))}
        print(args.encoder, "reconstruction", out["reconstruction"], flush=True)
        with atomic_file(args.out) as tmp: Path(tmp).write_text(json.dumps(out, indent=1))
        return
    corpus, latents = load_corpus("wordnet"), runs / "latents.safetensors"
    runs.mkdir(parents=True, exist_ok=True)
    LatentDataset(ae.encode(corpus.texts("train")).cpu(), torch.tensor(corpus.labels("train"))).save(latents)
    subprocess.run(["python3", "-m", "ld4lg_edu", "train-diffusion", "--preset", "paper", "--width", "256", "--depth",
                    "8", "--heads", "4", "--steps", str(args.stage2_steps), "--batch-size", "256", "--lr", "3e-4",
                    "--compile", "--cuda-graph", "--latents", str(latents), "--out", str(runs / "diffusion"),
                    "--overwrite"],
                   check=True)
    print(args.encoder, f"stage 2 done at {time.time() - start:.0f} s", flush=True)
    denoiser_dir = runs / "diffusion" / "ema_denoiser"
    schedule = schedule_from_config(read_denoiser_info(denoiser_dir)["schedule"])
    pipe = LatentDiffusionPipeline(ae, load_denoiser(denoiser_dir, device=device), schedule, corpus.label_names,
                                   steps=25, device=device)
    out = score(pipe, args.encoder)
    out["ae_history"] = history
    with atomic_file(args.out) as tmp: Path(tmp).write_text(json.dumps(out, indent=1))
    print(args.encoder, f"done in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
