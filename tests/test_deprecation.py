"""The 0.1 module paths still import for one release, with a warning naming the new one."""

import importlib
import warnings

import pytest

import sktilt

OLD_PATHS = [
    ("sktilt.boltzmann", "BoltzmannTuner", "sktilt.tilt"),
    ("sktilt.criteria", "CurveMaximum", "sktilt.tilt"),
    ("sktilt.samplers", "GaussianBase", "sktilt.tilt"),
    ("sktilt.beta", "quantile_budget", "sktilt.tilt"),
    ("sktilt.diagnostics", "tilted_moments", "sktilt.tilt._reference"),
    ("sktilt.rare_events", "TailEstimate", "sktilt.tilt"),
    ("sktilt.flows", "FLOWS", "sktilt.tilt._flows"),
    ("sktilt.tilting", "evaluate_criterion", "sktilt.tilt._criteria"),
    ("sktilt.proposals", "GaussianProposal", "sktilt.avo"),
    ("sktilt.critics", "CriticModule", "sktilt.avo._critics"),
    ("sktilt.nets", "StepNet", "sktilt._training"),
    ("sktilt.vae", "VAE", "sktilt.models"),
    ("sktilt.classifier", "TorchClassifier", "sktilt.models"),
]


@pytest.mark.parametrize("old, name, new", OLD_PATHS)
def test_old_paths_warn_and_resolve_to_the_new_objects(old, name, new):
    module = importlib.import_module(old)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj = getattr(module, name)
    # one warning, naming the new place (an internal's old path points at its private
    # module, not at a package that would warn a second time)
    assert [str(w.message).split(";")[0] for w in caught] == [f"{old}.{name} moved to {new}.{name}"]
    assert caught[0].category is DeprecationWarning
    assert obj is getattr(importlib.import_module(new), name)


def test_removed_names_say_what_replaces_them():
    import sktilt.tilting

    with pytest.raises(AttributeError, match="StepNet"):
        sktilt.tilting.TiltNet  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute"):
        sktilt.boltzmann.nothing  # noqa: B018


def test_every_public_name_imports_from_the_top_level():
    for name in sktilt.__all__:
        assert getattr(sktilt, name) is not None
