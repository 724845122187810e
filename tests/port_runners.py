"""Replay a recorded legacy-framework case through the port and compare, key by key.

A case is what a ``legacy/record_*.py`` script feeds its real-framework graph (``config`` plus ``in/*``
arrays) and what the graph returned (``out/*``). ``run_port_*`` computes the same quantities with the
port; :func:`compare_outputs` checks every recorded key under the project's tolerance table. Shared by
tests/test_golden.py (recordings on disk) and tests/legacy/ (live frameworks).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from tests.tolerances import assert_close

GOLDEN = Path(__file__).resolve().parent / "golden"


def golden_cases(name: str) -> Iterator[Tuple[str, dict, dict, dict]]:
    """``(case_id, config, inputs, outputs)`` of every case in tests/golden/<name>.npz."""
    with np.load(GOLDEN / f"{name}.npz", allow_pickle=False) as z:
        ids = sorted({k.split("/", 1)[0] for k in z.files if k.startswith("c")}, key=lambda s: int(s[1:]))
        for cid in ids:
            config = json.loads(str(z[f"{cid}/config"]))
            inputs = {k.split("/", 2)[2]: z[k] for k in z.files if k.startswith(f"{cid}/in/")}
            outputs = {k.split("/", 2)[2]: z[k] for k in z.files if k.startswith(f"{cid}/out/")}
            yield cid, config, inputs, outputs


def golden_versions(name: str) -> dict:
    with np.load(GOLDEN / f"{name}.npz", allow_pickle=False) as z:
        return json.loads(str(z["versions"]))


# Recorded next to the outputs but fed to the graph (the clip norm the recorder chose for the case): settings
# the port is given, never results to compare.
RECORDED_SETTINGS = ("max_grad_norm",)


def compare_outputs(port: Dict[str, np.ndarray], recorded: Dict[str, np.ndarray], dtype, *, exact=(),
                    skip=(), label: str = "") -> List[str]:
    """Assert every recorded key the port produced is close (``exact`` keys: equal). Returns the keys
    compared; a recorded key the port did not produce is an error unless listed in ``skip`` (or one of the
    ``RECORDED_SETTINGS``, which are inputs, not results, and never compared)."""
    skip = tuple(skip) + RECORDED_SETTINGS
    assert not set(RECORDED_SETTINGS) & set(port), f"{label}: the port must not echo the recorded settings"
    missing = [k for k in recorded if k not in port and k not in skip]
    assert not missing, f"{label}: the port produced no value for recorded {missing}"
    compared = []
    for key in sorted(recorded):
        if key in skip or key not in port:
            continue
        if key in exact:
            np.testing.assert_array_equal(np.asarray(port[key]), recorded[key], err_msg=f"{label} {key}")
        else:
            assert_close(torch.as_tensor(np.asarray(port[key])), torch.as_tensor(recorded[key]),
                         dtype=torch.float64 if dtype == "float64" else torch.float32, msg=f"{label} {key}")
        compared.append(key)
    return compared


def _torch_dtype(name: str):
    return torch.float64 if name == "float64" else torch.float32


# ------------------------------------------------------------------------------------------- tf_ptb

def ptb_tf_variables(config: dict, inputs: dict) -> Dict[str, np.ndarray]:
    names = {"Model/embedding": inputs["embedding"], "Model/softmax_w": inputs["softmax_w"],
             "Model/softmax_b": inputs["softmax_b"]}
    for k in range(config["num_layers"]):
        names[f"Model/RNN/multi_rnn_cell/cell_{k}/basic_lstm_cell/kernel"] = inputs[f"kernel_{k}"]
        names[f"Model/RNN/multi_rnn_cell/cell_{k}/basic_lstm_cell/bias"] = inputs[f"bias_{k}"]
    return names


def ptb_model(config: dict, variables, max_grad_norm: float = 5.0, learning_rate: float = 1.0):
    from ports.tf_ptb import Config, PTBModel

    cfg = dataclasses.replace(Config.preset("small"), vocab_size=config["vocab_size"],
                              hidden_size=config["hidden_size"], num_layers=config["num_layers"],
                              batch_size=config["batch_size"], num_steps=config["num_steps"],
                              forget_bias=float(config["forget_bias"]), keep_prob=1.0,
                              max_grad_norm=float(max_grad_norm), learning_rate=float(learning_rate))
    model = PTBModel(cfg, is_training=True, dtype=_torch_dtype(config["dtype"]))
    model.load_tf1_variables(variables)
    return model


def run_port_ptb(config: dict, inputs: dict, outputs: dict) -> Dict[str, np.ndarray]:
    from ports.tf_ptb import train_step

    L = config["num_layers"]
    dt = _torch_dtype(config["dtype"])
    state = tuple((torch.as_tensor(inputs[f"c0_{k}"], dtype=dt), torch.as_tensor(inputs[f"h0_{k}"], dtype=dt))
                  for k in range(L))
    model = ptb_model(config, ptb_tf_variables(config, inputs), float(outputs["max_grad_norm"]),
                      config["learning_rate"])
    port: Dict[str, np.ndarray] = {}
    logits, final = model(torch.as_tensor(inputs["inputs"]), state)
    cost = model.cost(logits, torch.as_tensor(inputs["targets"]))
    cost.backward()
    port["logits"] = logits.detach().numpy()
    port["cost"] = cost.detach().numpy()
    for k, (c, h) in enumerate(final):
        port[f"final_c_{k}"], port[f"final_h_{k}"] = c.detach().numpy(), h.detach().numpy()
    for name, p in model.tf1_variables().items():
        port[f"grad/{name}"] = p.grad.detach().numpy().copy()
    port["dense_norm"] = np.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters()))
    fresh = ptb_model(config, ptb_tf_variables(config, inputs), float(outputs["max_grad_norm"]),
                      config["learning_rate"])
    _cost, _state, norm = train_step(fresh, inputs["inputs"], inputs["targets"], state, config["learning_rate"])
    port["global_norm"] = np.asarray(norm)
    for name, p in fresh.tf1_variables().items():
        port[f"updated/{name}"] = p.detach().numpy().copy()
    return port


# ------------------------------------------------------------------------------------- tf_shakespeare

SHAKESPEARE_SCOPE = "lstm_model"


def shakespeare_tf_variables(inputs: dict) -> Dict[str, np.ndarray]:
    s = SHAKESPEARE_SCOPE
    return {f"{s}/lstm_vars/W": inputs["W"], f"{s}/lstm_vars/b": inputs["b"],
            f"{s}/lstm_vars/embedding_mat": inputs["embedding_mat"],
            f"{s}/rnn_decoder/basic_lstm_cell/kernel": inputs["kernel"],
            f"{s}/rnn_decoder/basic_lstm_cell/bias": inputs["bias"]}


def shakespeare_model(config: dict, variables):
    from ports.tf_shakespeare import LSTMModel

    model = LSTMModel(config["rnn_size"], config["vocab_size"], config["batch_size"], config["training_seq_len"],
                      dtype=_torch_dtype(config["dtype"]))
    model.load_tf1_variables(variables)
    return model


def run_port_shakespeare(config: dict, inputs: dict, outputs: dict) -> Dict[str, np.ndarray]:
    from compat.seq2seq import LSTMStateTuple
    from compat.tf1 import TFAdam
    from ports.tf_shakespeare import sample_ids
    from ports.tf_shakespeare import train_step

    dt = _torch_dtype(config["dtype"])
    state = LSTMStateTuple(torch.as_tensor(inputs["c0"], dtype=dt), torch.as_tensor(inputs["h0"], dtype=dt))
    variables = shakespeare_tf_variables(inputs)
    model = shakespeare_model(config, variables)
    port: Dict[str, np.ndarray] = {}
    out = model(torch.as_tensor(inputs["x"]), state)
    port["logits"] = out.logits.detach().numpy()
    port["final_c"], port["final_h"] = (t.detach().numpy() for t in out.final_state)
    cost, _ = model.cost(torch.as_tensor(inputs["x"]), torch.as_tensor(inputs["y"]), state)
    cost.backward()
    port["cost"] = cost.detach().numpy()
    for name, p in model.tf1_variables().items():
        port[f"grad/{name}"] = p.grad.detach().numpy().copy()
    trained = shakespeare_model(config, variables)
    optimizer = TFAdam(trained.trainable_variables(), lr=config["learning_rate"])
    for step in (1, 2):
        _c, _s, norm = train_step(trained, optimizer, inputs["x"], inputs["y"], state, config["clip"])
        port[f"global_norm_step{step}"] = np.asarray(float(norm))
        for name, p in trained.tf1_variables().items():
            port[f"step{step}/{name}"] = p.detach().numpy().copy()
    infer = model.infer_model()
    port["sample_ids"] = np.asarray(sample_ids(infer, [int(i) for i in inputs["prime_ids"]], config["num"]),
                                    dtype=np.int64)
    with torch.no_grad():
        T = config["loop_steps"]
        first = torch.zeros(1, T, dtype=torch.long)
        first[0, 0] = int(inputs["loop_first"][0])
        output, (lc, lh) = model.decode(model.embed(first), None, loop=True)
        port["loop_logits"] = (output @ model.W + model.b).numpy()
        port["loop_final_c"], port["loop_final_h"] = lc.numpy(), lh.numpy()
    return port


# -------------------------------------------------------------------------------------- theano_imdb

IMDB_PARAMS = ("Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b")


def run_port_imdb(config: dict, inputs: dict, outputs: dict) -> Dict[str, np.ndarray]:
    from ports.theano_imdb import Adadelta, LSTMClassifier

    dt = _torch_dtype(config["dtype"])
    params = {k: inputs[k] for k in IMDB_PARAMS}
    x, mask, y = inputs["x"], inputs["mask"], inputs["y"]
    noise = torch.as_tensor(inputs["noise"], dtype=dt)
    decay_c = float(config["decay_c"])
    port: Dict[str, np.ndarray] = {}
    model = LSTMClassifier.from_params(params, use_dropout=True, dtype=dt)
    port["pred_prob"] = model.predict_proba(x, mask).numpy()
    model.eval()
    with torch.no_grad():
        port["cost_eval"] = model.cost(x, mask, y, decay_c=decay_c).numpy()
    model.train()
    cost = model.cost(x, mask, y, decay_c=decay_c, noise=noise)
    cost.backward()
    port["cost"] = cost.detach().numpy()
    for name, p in model.named_parameters():
        port[f"grad/{name}"] = p.grad.detach().numpy().copy()
    trained = LSTMClassifier.from_params(params, use_dropout=True, dtype=dt)
    trained.train()
    optimizer = Adadelta(trained.parameters())
    for step in (1, 2):
        optimizer.zero_grad()
        trained.cost(x, mask, y, decay_c=decay_c, noise=noise).backward()
        optimizer.step()
        for name, p in trained.named_parameters():
            port[f"adadelta{step}/{name}"] = p.detach().numpy().copy()
    return port


# ----------------------------------------------------------------------------------- caffe_sequence

def caffe_blobs(arrays: dict, prefix: str = "") -> Dict[str, Tuple[str, List[np.ndarray]]]:
    """``{layer: ("", [blobs])}`` from recorded keys ``<prefix><layer>/<k>`` (``copy_trained_layers_from`` input)."""
    layers: Dict[str, Dict[int, np.ndarray]] = {}
    for key, value in arrays.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):].split("/")
        if len(rest) == 2 and rest[1].isdigit():
            layers.setdefault(rest[0], {})[int(rest[1])] = value
    return {name: ("", [blobs[k] for k in sorted(blobs)]) for name, blobs in layers.items()}


def port_blobs(net) -> Dict[str, np.ndarray]:
    """The port net's parameters keyed ``<layer>/<k>`` (Caffe's blob order), as the recordings key them."""
    return {f"{layer}/{k}": p.detach().cpu().numpy().copy()
            for layer, module in net.layer_modules.items() for k, p in enumerate(module.parameters())}


def caffe_sequence_trainer(config: dict, inputs: dict, out_dir: Path, **run_options):
    """The port's lstm_sequence trainer for a recorded case, started from the recorded initial weights."""
    from ports.caffe_sequence.config import RunConfig
    from ports.caffe_sequence.train import Trainer

    trainer = Trainer(RunConfig(config["config"], out_dir, iters=config["iters"], seed=config["seed"], progress=False,
                                **run_options))
    copied = trainer.net.copy_trained_layers_from(caffe_blobs(inputs), "recorded initial weights")
    assert sorted(copied) == sorted(trainer.net.layer_modules), copied
    return trainer


def run_port_caffe_sequence(config: dict, inputs: dict, out_dir: Path, *, iters: Optional[int] = None,
                            clipping_threshold: Optional[float] = None, **run_options) -> Dict[str, np.ndarray]:
    """lstm_sequence.cpp on the port from the recorded weights: every iteration's loss, the weights after
    ``config["early"]`` and after all iterations, the target and the generation. ``run_options``: RunConfig
    fields (``dwh_defect``, ``kernel``)."""
    from ports.caffe_sequence.train import generate

    trainer = caffe_sequence_trainer(config, inputs, out_dir, **run_options)
    port: Dict[str, np.ndarray] = {}
    if clipping_threshold is not None:
        for m in trainer.net.lstm_layers():
            m.clipping_threshold = clipping_threshold
    iters = config["iters"] if iters is None else iters
    losses = []
    for it in range(iters):
        losses.append(trainer.train_step(it))
        if it + 1 == config["early"]:
            port.update({f"iter{it + 1}/{k}": v for k, v in port_blobs(trainer.net).items()})
    port.update({f"iter{iters}/{k}": v for k, v in port_blobs(trainer.net).items()})
    port["loss"] = np.array(losses)
    port["target"] = trainer.sequence.numpy()
    if iters == config["iters"]:
        port["generated"] = generate(trainer.net, trainer.net_param, trainer.total_length,
                                     kernel=trainer.cfg.kernel)
    return port


def caffe_sequence_weights(outputs: dict, it: int, order: List[str]) -> Dict[str, Tuple[str, List[np.ndarray]]]:
    """Caffe's weights after iteration ``it`` of a recorded lstm_sequence case. Stored for the early and the
    third-to-last iteration; for the last two, the weights before minus the recorded momentum history
    (Blob::Update: one float32 subtraction; the recorder checked this on Caffe's files)."""
    if any(k.startswith(f"iter{it}/") for k in outputs):
        return caffe_blobs(outputs, f"iter{it}/")
    if f"history{it}/0" not in outputs:
        raise KeyError(f"the recording holds neither the weights nor the history of iteration {it}")
    before = caffe_sequence_weights(outputs, it - 1, order)
    history = iter(outputs[f"history{it}/{j}"] for j in range(sum(len(before[n][1]) for n in order)))
    return {name: ("", [np.subtract(w, next(history).reshape(w.shape), dtype=np.float32) for w in before[name][1]])
            for name in order}


def restart_caffe_sequence(config: dict, inputs: dict, outputs: dict, out_dir: Path, **run_options):
    """Iteration ``restart`` (the last but one) of the port started from Caffe's own state: Caffe's weights and
    momentum history, and the carried LSTM state the port computes from Caffe's weights of the iteration
    before (which starts its window with a reset, so that its final state depends on those weights only).

    Returns ``(loss, weights, update, caffe_update)``: the iteration's loss, the weights after it
    (``<layer>/<k>``), and the port's and Caffe's update of that iteration, history - momentum * previous
    history = lr * lr_mult * gradient, per blob in Caffe's order."""
    k = config["restart"]
    trainer = caffe_sequence_trainer(config, inputs, out_dir, **run_options)
    order = list(trainer.net.layer_modules)  # Caffe's learnable-parameter order: layer by layer, blob by blob
    n_windows = trainer.total_length // trainer.seq_length
    assert (k - 1) % n_windows == 0, "the iteration before the restart must start its window with a reset"
    trainer.net.copy_trained_layers_from(caffe_sequence_weights(outputs, k - 1, order))
    trainer.train_step(k - 1)  # its forward leaves the carried state; its update is replaced just below
    trainer.net.copy_trained_layers_from(caffe_sequence_weights(outputs, k, order))
    history = [outputs[f"history{k}/{j}"] for j in range(len(trainer.solver.history))]
    with torch.no_grad():
        for h, recorded in zip(trainer.solver.history, history):
            h.copy_(torch.as_tensor(recorded).reshape(h.shape))
    loss = trainer.train_step(k)
    momentum = trainer.solver.momentum
    update = [h.numpy().astype(np.float64) - momentum * prev.reshape(h.shape)
              for h, prev in zip(trainer.solver.history, history)]
    caffe_update = [outputs[f"history{k + 1}/{j}"].reshape(u.shape).astype(np.float64)
                    - momentum * prev.reshape(u.shape) for j, (u, prev) in enumerate(zip(update, history))]
    return loss, port_blobs(trainer.net), update, caffe_update
# ------------------------------------------------------------------------------------- BVLC LSTM net

def run_port_caffe_lstm(config: dict, inputs: dict) -> Dict[str, np.ndarray]:
    """The recorded BVLC net (``config["port_net"]``: Input blobs in place of HDF5Data) trained by the port as
    ``caffe train`` does: consecutive T-row chunks, cycling; CaffeSGD with the recorded solver. Returns every
    iteration's loss plus that of the extra forward pass Solver::Solve runs after training, the weights and
    momentum history after the first and the last iteration."""
    from compat.formats.prototxt import parse_prototxt
    from ports.caffe_sequence.model import CaffeNet
    from ports.caffe_sequence.solver import CaffeSGD

    net = CaffeNet(parse_prototxt(config["port_net"]), "TRAIN", source="recorded port_net")
    copied = net.copy_trained_layers_from(caffe_blobs(inputs), "recorded initial weights")
    assert sorted(copied) == sorted(net.layer_modules), copied
    solver = CaffeSGD(net.learnable_params(), parse_prototxt(config["solver"]))
    x, cont, target = (torch.as_tensor(inputs[k]) for k in ("x", "cont", "target"))
    T, chunks, iters = config["T"], config["chunks"], config["iters"]
    port: Dict[str, np.ndarray] = {}
    losses = []
    for it in range(iters + 1):
        rows = slice((it % chunks) * T, (it % chunks + 1) * T)
        solver.zero_grad()
        loss = net.loss(net(x=x[rows], cont=cont[rows], target=target[rows]))
        losses.append(loss.item())
        if it == iters:
            break  # Solver::Solve: one more forward after the last update, only to display the loss
        loss.backward()
        solver.step(it)
        if it == 0:
            port.update({f"w1/{k}": v for k, v in port_blobs(net).items()})
            port.update({f"history1/{j}": h.numpy().copy() for j, h in enumerate(solver.history)})
    port.update({f"w_end/{k}": v for k, v in port_blobs(net).items()})
    port.update({f"history/{j}": h.numpy().copy() for j, h in enumerate(solver.history)})
    port["loss"] = np.array(losses)
    return port
