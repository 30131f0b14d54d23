"What the training commands do with their run arguments: every one is handed on, none silently dropped."
from ld4lg_edu.cli import _train_overrides, build_parser


def test_train_diffusion_hands_on_the_seed_and_the_recipe_arguments():
    from ld4lg_edu.diffusion import DiffusionConfig
    args = build_parser().parse_args(["train-diffusion", "--latents", "x.safetensors", "--out", "run", "--seed", "7",
                                      "--steps", "12", "--lr", "0.002"])
    train = _train_overrides(DiffusionConfig.preset("tiny").train, args)
    assert (train.seed, train.steps, train.lr) == (7, 12, 0.002)
