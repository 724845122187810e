"""tests/host_sync.py catches each way of reading a device tensor on the host, and lets a computation that
reads none run to the end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.host_sync import META, run_without_host_sync

READS = {
    "item": lambda x: x.sum().item(),
    "float": lambda x: float(x.sum()),
    "bool": lambda x: bool(x.any()),
    "equal": lambda x: torch.equal(x, x),
    "nonzero": lambda x: x.nonzero(),
    "boolean index": lambda x: x[x > 0],
    "cpu": lambda x: x.cpu(),
    "tolist": lambda x: x.tolist(),
    "numpy": lambda x: x.numpy(),
}


@pytest.mark.parametrize("read", list(READS))
def test_each_host_read_is_caught(read):
    x = torch.zeros(2, 3, device=META)
    with pytest.raises(AssertionError, match="reads a device tensor's value on the host"):
        run_without_host_sync(lambda: READS[read](x), what=read)


def test_a_training_step_without_host_reads_runs_and_keeps_other_errors():
    lstm = torch.nn.LSTM(3, 4, 2).to(META)
    x = torch.zeros(5, 2, 3, device=META)

    def step():
        out, _ = lstm(x)
        out.sum().backward()
        return torch.nn.utils.clip_grad_norm_(lstm.parameters(), 1.0)

    norm = run_without_host_sync(step)
    assert norm.device == META and norm.shape == ()
    with pytest.raises(ValueError, match="not meta"):  # an error of the computation's own is not renamed
        run_without_host_sync(lambda: (_ for _ in ()).throw(ValueError("not meta")))


COPIES = {
    "to": lambda x: x + torch.arange(3).to(META),
    "copy_": lambda x: x.copy_(torch.zeros(2, 3)),
    "as_tensor of an array": lambda x: x + torch.as_tensor(np.arange(3), device=META),
}


@pytest.mark.parametrize("copy", list(COPIES))
def test_each_host_to_device_copy_is_caught(copy):
    x = torch.zeros(2, 3, device=META)
    with pytest.raises(AssertionError, match="copies a host tensor"):
        run_without_host_sync(lambda: COPIES[copy](x), what=copy)


def test_a_host_number_in_an_operation_is_no_copy():
    x = torch.zeros(2, 3, device=META)
    assert run_without_host_sync(lambda: x.mul_(torch.tensor(2.0)) + torch.full((), 1.0, device=META)).device == META


def test_non_blocking_copies_pass_where_asked_and_blocking_ones_do_not():
    host = torch.arange(6.0).view(2, 3)
    device = torch.zeros(2, 3, device=META)
    with pytest.raises(AssertionError, match="copies a host tensor of shape \\[2, 3\\]"):
        run_without_host_sync(lambda: host.to(META, non_blocking=True))  # none at all in a captured step
    for copy in (lambda: host.to(META), lambda: device.copy_(host), lambda: torch.as_tensor(host, device=META),
                 lambda: device[torch.tensor([1, 0])]):
        with pytest.raises(AssertionError, match="without non_blocking=True"):
            run_without_host_sync(copy, copies="non_blocking")
    moved = run_without_host_sync(lambda: host.to(META, non_blocking=True) * torch.tensor(2.0), copies="non_blocking")
    assert moved.device == META and moved.shape == (2, 3)
