"""The public constructors are fully annotated (the package ships ``py.typed``), and the
string options in their hints are the ones scikit-learn's parameter validation accepts."""

import inspect
import typing

import pytest
from sklearn.utils._param_validation import Hidden, StrOptions

from sktilt import (VAE, AdversarialRefiner, AVOSimulatorFitter, BoltzmannPath, BoltzmannTuner,
                    FlowProposal, GaussianBase, GaussianProposal, LatentSampler, TorchClassifier)
from sktilt.tilt import _criteria

CRITERIA = [getattr(_criteria, name) for name in _criteria.__all__
            if isinstance(getattr(_criteria, name), type)]
PUBLIC = [BoltzmannTuner, BoltzmannPath, AdversarialRefiner, AVOSimulatorFitter,
          GaussianProposal, FlowProposal, VAE, TorchClassifier, LatentSampler,
          GaussianBase, *CRITERIA]


def _literals(hint) -> set:
    """Every string of the ``Literal[...]`` parts of ``hint`` (through unions)."""
    if typing.get_origin(hint) is typing.Literal:
        return set(typing.get_args(hint))
    return set().union(*(_literals(arg) for arg in typing.get_args(hint)))


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_constructor_is_fully_annotated(cls):
    hints = typing.get_type_hints(cls.__init__)  # evaluates them: a typo raises here
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert [p for p in params if p not in hints] == []
    assert hints["return"] is type(None)
    for name, constraints in getattr(cls, "_parameter_constraints", {}).items():
        # the string options, hidden ones too ("deprecated", a renamed parameter's
        # old name's default: typed Literal["deprecated"])
        options = [c.constraint if isinstance(c, Hidden) else c
                   for c in (constraints if isinstance(constraints, list) else [])]
        strings = set().union(*(c.options for c in options if isinstance(c, StrOptions)))
        if strings:
            assert _literals(hints[name]) == strings, name


@pytest.mark.parametrize("cls, methods", [
    (BoltzmannTuner, ["fit", "sample", "sample_latent", "sample_tail", "tail_probability",
                      "score_samples", "score"]),
    (BoltzmannPath, ["fit", "sample", "tuner_at"]),
    (AdversarialRefiner, ["fit", "sample"]),
    (AVOSimulatorFitter, ["fit", "sample", "sample_parameters", "score"]),
    (GaussianProposal, ["sample"]),
    (FlowProposal, ["sample"]),
    (GaussianBase, ["fit"]),
], ids=lambda x: getattr(x, "__name__", ""))
def test_public_methods_have_return_types(cls, methods):
    for name in methods:
        assert "return" in typing.get_type_hints(getattr(cls, name)), name
