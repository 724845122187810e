"""Keras HDF5 model files written with h5py in a given Keras version's layout (for Keras versions that do not
install on Python 3.11, and for hand-made edge cases): root attributes ``keras_version``, ``backend``,
``model_config``; ``model_weights`` with ``layer_names``, ``backend``, ``keras_version``; one group per layer
with its ``weight_names`` and the datasets under those names (keras 1.2.2 ``engine/topology.py`` and keras
2.2.4 ``engine/saving.py`` ``save_weights_to_hdf5_group``). Needs numpy and h5py only."""
from __future__ import annotations

import json
from typing import List, Sequence, Tuple

import numpy as np


def write_keras_h5(path, config: dict, weights: Sequence[Tuple[str, List[Tuple[str, np.ndarray]]]], version: str,
                   backend: str = "tensorflow") -> None:
    """``weights``: per layer in the model's order, ``(layer name, [(weight name, array), ...])``."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = version.encode()
        f.attrs["backend"] = backend.encode()
        f.attrs["model_config"] = json.dumps(config).encode("utf-8")
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for n, _ in weights]
        g.attrs["backend"] = backend.encode()
        g.attrs["keras_version"] = version.encode()
        for lname, ws in weights:
            lg = g.create_group(lname)
            lg.attrs["weight_names"] = [wn.encode() for wn, _ in ws]
            for wn, value in ws:
                lg.create_dataset(wn, data=value)
