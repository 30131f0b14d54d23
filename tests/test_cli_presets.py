"Every ld4lg command that takes --preset names a preset that exists; a name that does not is an error listing the choices."
import pytest

from ld4lg_edu.cli import build_parser


def resolvers():
    "How each command turns its --preset into settings (the lookups its code makes)."
    from ld4lg_edu.autoencoder import AutoencoderConfig
    from ld4lg_edu.baseline import AR_PRESETS
    from ld4lg_edu.denoiser import DenoiserConfig
    from ld4lg_edu.diffusion import DiffusionConfig
    from ld4lg_edu.lm import COURSE_LM_PRESETS
    stage2 = [DenoiserConfig.preset, DiffusionConfig.preset]
    return {"train-lm": [COURSE_LM_PRESETS.__getitem__], "train-ae": [AutoencoderConfig.preset],
            "train-diffusion": stage2, "train-ar": [AR_PRESETS.__getitem__], "train-seq2seq": stage2,
            "train-segments": stage2}


def preset_options():
    "{command: its --preset action} for every subcommand that has one."
    sub = next(a for a in build_parser()._actions if a.dest == "command")   # the subcommands
    found = {}
    for name, parser in sub.choices.items():
        action = next((a for a in parser._actions if a.dest == "preset"), None)
        if action is not None: found[name] = action
    return found


def test_some_commands_take_presets():
    assert {"train-lm", "train-ae", "train-diffusion", "train-ar"} <= set(preset_options())


@pytest.mark.parametrize("command", sorted(preset_options()))
def test_the_default_preset_of_each_command_exists(command):
    action, lookups = preset_options()[command], resolvers().get(command)
    assert lookups, f"ld4lg {command} takes --preset but this test does not know how it resolves it: add it here"
    for lookup in lookups:
        assert lookup(action.default)                                        # resolves without an error
        for choice in action.choices or []: assert lookup(choice)           # every advertised choice too


@pytest.mark.parametrize("command", sorted(preset_options()))
def test_an_unknown_preset_lists_the_choices(command):
    for lookup in resolvers()[command]:
        with pytest.raises(ValueError, match="unknown preset 'nope'.*choose one of .*course") as e:
            lookup("nope")
        assert "tiny" in str(e.value)
