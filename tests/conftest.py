"""Shared fixtures; torch uses one thread per test process to keep timings stable."""

import torch

torch.set_num_threads(1)
