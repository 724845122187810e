"""Hypothesis profiles, the device parameter, the path to ../shared/data, and a fixed thread count.

Profiles: ``ci`` (quick, the default under CI=true), ``dev`` (the default elsewhere) and
``thorough`` (on demand: ``HYPOTHESIS_PROFILE=thorough tox``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "ci", max_examples=15, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=25, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(  # one-shot runs on a borrowed GPU machine: failures reported as found, not shrunk
    "no-shrink", max_examples=15, deadline=None, derandomize=True, print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
# float32 on CUDA is float32 here, as in the CLIs (compat.cli.check_device): no TF32 rounding in cuDNN/cuBLAS.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data"))

NO_CUDA_REASON = "no CUDA device on this machine (CI has none; run on a GPU machine to cover the CUDA path)"

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA_REASON),
    ]),
]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Parametrises a test over the CPU and, when present, CUDA."""
    return request.param


def shared_data_path(*parts: str) -> Path:
    """Path under ../shared/data. Missing data fails under CI=true and skips, with its reason, elsewhere."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"shared data {path} is missing (set SHARED_DATA or place ../shared/data beside the checkout)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data():
    """The resolver :func:`shared_data_path` as a fixture: ``shared_data("ptb", "ptb.train.txt")``."""
    return shared_data_path


@pytest.fixture(autouse=True)
def _thread_count_restored():
    """The CLIs run in-process here: they keep the suite's thread count (a caller's own, compat.threads) unless a
    test passes --threads, after which the suite's count is restored. tests/test_threads.py tests the policy."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
