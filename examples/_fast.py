"""Shared switch of the examples: ``SKTILT_EXAMPLES_FAST=1`` shrinks every run."""

import os

FAST = os.environ.get("SKTILT_EXAMPLES_FAST", "") not in ("", "0")


def pick(full, fast):
    """``fast`` in fast mode, else ``full``."""
    return fast if FAST else full
