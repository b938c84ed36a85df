"""The public surface of sktilt.tilt, sktilt.avo and sktilt.models: the public names, and
the internals that left it, which still resolve for one release with a warning naming
their private home.

The expected sets are written out so that a new name in a package's ``__all__`` (an
internal leaking, or a public name added) fails here until it is added on purpose.
"""

import importlib
import inspect
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import sktilt
from sktilt._deprecation import REMOVED_IN

ROOT = Path(__file__).parents[1]

PUBLIC = {
    "sktilt.tilt": {
        # estimators
        "BoltzmannTuner", "BoltzmannPath", "AdversarialRefiner",
        # what is passed to them: bases and criteria
        "LatentSampler", "GaussianBase",
        "ClassLogProbability", "CurveMaximum", "LinearCriterion", "QuadraticCriterion",
        "WindowContrast", "WindowMean",
        # what they return or hold in fitted attributes
        "TiltedModel", "TailEstimate", "TiltReference", "ImportanceDiagnostics",
        "LogDensityRatio", "Base",
        "TiltQualityWarning", "quantile_budget",
    },
    "sktilt.avo": {
        "AVOSimulatorFitter", "GaussianProposal", "FlowProposal", "Proposal", "Critic",
        "MomentRefinement", "FitQualityWarning", "FitConvergenceWarning",
        "SimulationFailureWarning",
    },
    "sktilt.models": {
        "VAE", "TorchClassifier", "class_log_probability",
        # the default module= of each, and the classes a custom module subclasses or
        # VAE.decoder_module() returns
        "VAEModule", "VAEDecoder", "MLPClassifierModule",
    },
}

# Internals exported until 0.2, with the private module each lives in.
PRIVATE = {
    "sktilt.tilt": {
        "FLOWS": "_flows", "CouplingLayer": "_flows", "TiltFlow": "_flows",
        "build_flow": "_flows", "as_base": "_bases", "MixtureBase": "_sklearn_bases",
        "BetaController": "_beta_search", "evaluate_criterion": "_criteria",
        "ConditionedFlow": "_path", "importance_tail_probability": "_rare_events",
        "sir_indices": "_rare_events", "sir_tail_sample": "_rare_events",
        "importance_diagnostics": "_reference", "pareto_front": "_reference",
        "pareto_k": "_reference", "reference_beta": "_reference",
        "resolvable_beta": "_reference", "tilted_moments": "_reference",
    },
    "sktilt.avo": {
        "PENALTIES": "_critics", "CriticModule": "_critics", "CriticObjective": "_critics",
        "critic_loss": "_critics", "generator_values": "_critics",
        "FlowProposalModule": "_flow", "GaussianProposalModule": "_gaussian",
        "box_transform": "_gaussian", "ParameterResolution": "_resolution",
        "ScaleFloor": "_resolution", "ProposalObjective": "_step",
        "annealed_gamma": "_step", "polynomial_average": "_step",
        "location_drift": "_checks",
    },
    "sktilt.models": {
        "LIKELIHOODS": "_vae_module", "NOISE_MODELS": "_vae_module",
        "NegativeELBO": "_vae_module", "NoiseScale": "_vae_module",
        "standardization_stats": "_skorch",
    },
}

DROPPED = [(package, name, module) for package, names in PRIVATE.items()
           for name, module in names.items()]

# The 0.1 module stubs (sktilt._deprecation.moved).
OLD_MODULES = ["beta", "boltzmann", "classifier", "criteria", "critics", "diagnostics",
               "flows", "nets", "proposals", "rare_events", "samplers", "tilting", "vae"]


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_all_is_the_public_names(package):
    module = importlib.import_module(package)
    assert len(module.__all__) == len(set(module.__all__))
    assert set(module.__all__) == PUBLIC[package]


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_dir_lists_only_the_public_names(package):
    module = importlib.import_module(package)
    assert dir(module) == sorted(PUBLIC[package])


def test_public_names_import_without_warning():
    # a fresh interpreter, every warning an error: importing the packages and their
    # public names warns about nothing
    code = "; ".join(f"from {package} import *" for package in PUBLIC)
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_are_documented(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert inspect.getdoc(getattr(module, name)), f"{package}.{name} has no docstring"


@pytest.mark.parametrize("package, name, private", DROPPED)
def test_dropped_names_resolve_with_a_warning_naming_their_private_module(package, name,
                                                                          private):
    where = f"{package}.{private}"
    module = importlib.import_module(package)
    match = (rf"{package}\.{name} is internal: it leaves the public API in sktilt "
             rf"{REMOVED_IN}, and lives privately in {where}\.{name}")
    with pytest.warns(DeprecationWarning, match=match) as record:
        obj = getattr(module, name)
    assert len(record) == 1
    assert record[0].filename == __file__  # attributed to the code that asked for it
    assert obj is getattr(importlib.import_module(where), name)
    with pytest.warns(DeprecationWarning, match=match):
        exec(f"from {package} import {name}", {})


def test_dropped_names_are_neither_listed_nor_bound():
    for package, name, _ in DROPPED:
        module = importlib.import_module(package)
        assert name not in module.__all__ and name not in dir(module)
        assert name not in vars(module), f"{package}.{name} is bound: no warning"


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_unknown_names_still_raise_attribute_error(package):
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        module.nothing  # noqa: B018
    assert not hasattr(module, "nothing")


def test_top_level_names_are_public():
    public = set().union(*PUBLIC.values())
    for name in sktilt.__all__:
        module = sktilt._LAZY[name]
        if module in ("avo", "tilt"):
            assert name in public, f"sktilt.{name} is not public in sktilt.{module}"


@pytest.mark.parametrize("old", OLD_MODULES)
def test_old_module_paths_warn_once(old):
    # an old 0.1 path names where the object lives now, without a second warning from a
    # package whose internal it became
    module = importlib.import_module(f"sktilt.{old}")
    for name in dir(module):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            getattr(module, name)
        assert len(caught) == 1, [str(w.message) for w in caught]
        assert issubclass(caught[0].category, DeprecationWarning)
