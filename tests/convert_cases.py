"""The converter's golden cases (tests/golden/convert/, recorded by legacy/record_convert_*.py) and how
to run a converted module on a recorded input. Shared by the default suite and the live legacy tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

GOLDEN_CONVERT = Path(__file__).resolve().parent / "golden" / "convert"


def cases(framework: str) -> Iterator[Tuple[str, dict, Dict[str, np.ndarray]]]:
    """(case name, config, arrays under ``<case>/``) of ``tests/golden/convert/<framework>/expected.npz``."""
    path = GOLDEN_CONVERT / framework / "expected.npz"
    with np.load(path, allow_pickle=False) as z:
        names = sorted({k.split("/")[0] for k in z.files if k.endswith("/config")})
        for name in names:
            arrays = {k[len(name) + 1:]: z[k] for k in z.files if k.startswith(name + "/")}
            yield name, json.loads(str(arrays.pop("config"))), arrays


def convert_cli(source, out, extra: List[str] = ()) -> int:
    from compat.convert.__main__ import main

    return main([str(source), "--to", str(out), *extra])


def run_module(module, x: np.ndarray, *, batch_first_input: bool, lengths=None):
    """(y, h_n, c_n) as numpy float64, y in the layout of ``x`` (batch-major when ``batch_first_input``)."""
    p = next(module.parameters())
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(p.dtype)
    if batch_first_input != module.batch_first:
        xt = xt.transpose(0, 1)
    with torch.no_grad():
        if lengths is not None:
            packed = pack_padded_sequence(xt, torch.as_tensor(lengths), batch_first=module.batch_first,
                                          enforce_sorted=False)
            y, (h, c) = module(packed)
            y, _ = pad_packed_sequence(y, batch_first=module.batch_first, total_length=xt.shape[1 if module.batch_first else 0])
        else:
            y, (h, c) = module(xt)
    if batch_first_input != module.batch_first:
        y = y.transpose(0, 1)
    return y.double().numpy(), h.double().numpy(), c.double().numpy()
