"""tests/host_sync.py catches each way of reading a device tensor on the host, and lets a computation that
reads none run to the end."""
from __future__ import annotations

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


def test_blocking_copies_to_the_device_are_caught_where_asked():
    host = torch.arange(6.0).view(2, 3)
    device = torch.zeros(2, 3, device=META)
    assert run_without_host_sync(lambda: host.to(META), blocking_copies=True).device == META
    for copy in (lambda: host.to(META), lambda: device.copy_(host), lambda: torch.as_tensor(host, device=META),
                 lambda: device[torch.tensor([1, 0])]):
        with pytest.raises(AssertionError, match="without non_blocking=True"):
            run_without_host_sync(copy, blocking_copies=False)
    moved = run_without_host_sync(lambda: host.to(META, non_blocking=True) * torch.tensor(2.0), blocking_copies=False)
    assert moved.device == META and moved.shape == (2, 3)
