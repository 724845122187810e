"""The tutorial's classifier (DeepLearningTutorials ``code/lstm.py`` ``build_model``) as a torch module.

    emb   = Wemb[x]                                  [T, n, dim]
    h     = lstm_layer(emb, mask)                    [T, n, dim]  (masked steps carry h and c)
    proj  = (h * mask).sum(0) / mask.sum(0)          [n, dim]     mean over the unmasked steps
    proj  = dropout_layer(proj)                      train: proj * binomial(p=0.5); eval: proj * 0.5
    pred  = softmax(proj @ U + b)                    [n, ydim]
    cost  = -log(pred[arange(n), y] + 1e-8).mean()   (+ decay_c * (U ** 2).sum())

Parameters keep the tutorial's names and numpy layout (``Wemb [n_words, dim]``, ``lstm_W [dim, 4dim]``,
``lstm_U [dim, 4dim]``, ``lstm_b [4dim]``, ``U [dim, ydim]``, ``b [ydim]``, gate blocks i, f, o, c); the
LSTM runs through :func:`compat.lstm.lstm` on them as stored (``lstm_W``, ``lstm_U`` transposed views, the
tutorial's gate order), told that the pooling reads no output past each review's end.

A batch that arrives on the host (numpy, as :func:`ports.theano_imdb.prepare_data` builds it) is checked on
the host (shapes, word ids, labels) and its right padding decided there (:class:`Batch`): the core gets the
reviews' lengths on the host instead of the mask, so that a training step (forward, cost, backward, the
optimizer's update) reads no value of the device (tests/test_theano_imdb.py runs one with the device on
torch's meta device). A batch given on the device is checked there, which reads it.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Mapping, NamedTuple, Optional

import numpy as np
import torch
from torch import Tensor, nn

from compat.lstm import LayerWeights, lstm, right_padded_lengths
from compat.recurrent import Cell
from compat.token_ids import check_token_ids

SEED = 123
PARAM_NAMES = ("Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b")
# lstm.py lstm_layer._step: _slice(preact, 0) i, 1 f, 2 o, 3 c (the cell input, the core's g)
THEANO_GATE_ORDER = "ifog"


class Batch(NamedTuple):
    """One batch as the model runs it: ``x`` [maxlen, n] int64 and ``mask`` [maxlen, n] on the model's device,
    and ``lengths`` [n] on the host where the mask arrived there and is right padding (every batch
    prepare_data builds), else None (a mask with holes, or given on the device: the core reads it)."""

    x: Tensor
    mask: Tensor
    lengths: Optional[Tensor]


def _on_host(value) -> bool:
    return not isinstance(value, Tensor) or value.device.type == "cpu"


def _to_device(t: Tensor, device) -> Tensor:
    """A host tensor on ``device``, the copy not waiting for the device: from pageable memory (numpy's) it is
    staged before this returns, so the caller may reuse the array (a pinned tensor is copied asynchronously:
    keep it unchanged until the step has run); a blocking copy would wait for the device's queue to drain."""
    return t.to(device, non_blocking=True)


def _floatx(dtype) -> np.dtype:
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace("torch.", "")
    return np.dtype(dtype)


def ortho_weight(ndim: int, rng: np.random.RandomState, floatX="float64") -> np.ndarray:
    """lstm.py ``ortho_weight``: the left singular vectors of a standard normal matrix."""
    W = rng.randn(ndim, ndim)
    u, s, v = np.linalg.svd(W)
    return u.astype(floatX)


def init_params(n_words: int, dim_proj: int, ydim: int, rng: Optional[np.random.RandomState] = None,
                floatX="float64") -> "OrderedDict[str, np.ndarray]":
    """lstm.py ``init_params`` + ``param_init_lstm``: the same draws, in the same order and precision.

    ``rng`` None: a fresh ``RandomState(SEED)``, the state right after the tutorial's
    ``numpy.random.seed(SEED)``. (``train_lstm`` passes its own generator, which has already drawn the
    validation split and the test subset, as the tutorial's global generator has by then.)
    """
    rng = np.random.RandomState(SEED) if rng is None else rng
    floatX = _floatx(floatX)
    params = OrderedDict()
    params["Wemb"] = (0.01 * rng.rand(n_words, dim_proj)).astype(floatX)
    params["lstm_W"] = np.concatenate([ortho_weight(dim_proj, rng, floatX) for _ in range(4)], axis=1)
    params["lstm_U"] = np.concatenate([ortho_weight(dim_proj, rng, floatX) for _ in range(4)], axis=1)
    params["lstm_b"] = np.zeros((4 * dim_proj,)).astype(floatX)
    # The tutorial casts before scaling here (0.01 * randn(...).astype(floatX)) but after scaling for Wemb.
    params["U"] = 0.01 * rng.randn(dim_proj, ydim).astype(floatX)
    params["b"] = np.zeros((ydim,)).astype(floatX)
    return params


class LSTMClassifier(nn.Module):
    """Mean-pooled LSTM sentiment classifier with the tutorial's parameters, semantics and initialisation.

    ``doubled_bias=True`` reproduces lstm.py before May 2015, whose ``_step`` added ``lstm_b`` a second
    time to the pre-activation (already holding ``x W + b``): the LSTM then runs with ``2 * lstm_b``.
    Checkpoints trained by that version need it to give their predictions.
    """

    def __init__(self, n_words: int = 10000, dim_proj: int = 128, ydim: int = 2, *, use_dropout: bool = True,
                 doubled_bias: bool = False, dtype=torch.float64, device=None,
                 rng: Optional[np.random.RandomState] = None, params: Optional[Mapping[str, np.ndarray]] = None,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        self.use_dropout = use_dropout
        self.doubled_bias = doubled_bias
        self.cell = Cell("lstm", gate_order=THEANO_GATE_ORDER)
        if params is None:
            params = init_params(n_words, dim_proj, ydim, rng, floatX=dtype)
        _check_params(params)
        for name in PARAM_NAMES:
            value = torch.tensor(np.array(params[name], copy=True))  # never alias the caller's arrays
            self.register_parameter(name, nn.Parameter(value.to(device=device, dtype=dtype)))
        self.generator = generator

    # ------------------------------------------------------------------ construction and export
    @classmethod
    def from_params(cls, params: Mapping[str, np.ndarray], use_dropout: bool = True, *, doubled_bias: bool = False,
                    dtype=None, device=None) -> "LSTMClassifier":
        """A classifier holding ``params`` (numpy arrays under the tutorial's keys; extra keys ignored)."""
        _check_params(params)
        if dtype is None:
            dtype = torch.float32 if np.asarray(params["Wemb"]).dtype == np.float32 else torch.float64
        return cls(use_dropout=use_dropout, doubled_bias=doubled_bias, dtype=dtype, device=device, params=params)

    def numpy_params(self) -> "OrderedDict[str, np.ndarray]":
        """lstm.py ``unzip``: the current values as numpy arrays, in the tutorial's order."""
        return OrderedDict((n, p.detach().cpu().numpy().copy()) for n, p in self.named_parameters())

    def load_numpy_params(self, params: Mapping[str, np.ndarray]) -> None:
        """lstm.py ``zipp``: set every parameter from numpy arrays."""
        _check_params(params, expect={n: tuple(p.shape) for n, p in self.named_parameters()})
        with torch.no_grad():
            for n, p in self.named_parameters():
                p.copy_(torch.as_tensor(np.asarray(params[n])))

    @property
    def dim_proj(self) -> int:
        return self.Wemb.shape[1]

    @property
    def n_words(self) -> int:
        return self.Wemb.shape[0]

    @property
    def ydim(self) -> int:
        return self.b.shape[0]

    # ---------------------------------------------------------------------------------- forward
    def _inputs(self, x, mask) -> Batch:
        """The checked :class:`Batch`: what arrives on the host is checked and measured there, then copied."""
        dev = self.Wemb.device
        host = _on_host(x) and _on_host(mask)
        x = torch.as_tensor(x) if _on_host(x) else x
        mask = torch.as_tensor(mask) if _on_host(mask) else mask
        if x.dim() != 2 or tuple(mask.shape) != tuple(x.shape):
            raise ValueError(f"x has shape {list(x.shape)} and mask {list(mask.shape)}; both must be [maxlen, n_samples]")
        if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
            raise ValueError(f"x must hold integer word ids; got {x.dtype}")
        # On the host where x arrived there; a batch given on the device is read here.
        check_token_ids(x, self.n_words, "x", hint="the embedding has n_words rows: prepare the data with the "
                        "same n_words")
        mask = mask.to(self.Wemb.dtype)
        lengths = right_padded_lengths(mask) if host else None
        return Batch(_to_device(x.long(), dev), _to_device(mask, dev), lengths)

    def pooled(self, x, mask) -> Tensor:
        """The mean-pooled LSTM output [n, dim] (before dropout)."""
        x, mask, lengths = self._inputs(x, mask)
        emb = nn.functional.embedding(x, self.Wemb)  # Wemb[x.flatten()].reshape([T, n, dim])
        b = 2 * self.lstm_b if self.doubled_bias else self.lstm_b
        # state_below = emb W + b, then the recurrence with U: W and U are W_ih^T and W_hh^T as stored.
        # The pooling below multiplies every output past a review's end by 0 (its gradient there is exactly
        # 0) and reads no final state: past_end="unread" lets the core run right-padded batches without the
        # mask, which gives the same cost and gradients as the tutorial's masked scan. A right-padded mask
        # goes to the core as its lengths (the same computation there, known on the host); any other mask
        # as the mask, which the core runs as the tutorial's scan.
        sequences = dict(mask=mask) if lengths is None else dict(lengths=lengths)
        h, _ = lstm(emb, [LayerWeights(self.lstm_W.t(), self.lstm_U.t(), b)], **sequences, past_end="unread",
                    cell=self.cell)
        # build_model: sum over time of the masked outputs divided by the number of unmasked steps.
        return (h * mask[:, :, None]).sum(dim=0) / mask.sum(dim=0)[:, None]

    def forward(self, x, mask, noise: Optional[Tensor] = None) -> Tensor:
        """lstm.py's ``build_model`` up to ``pred``, in the current train/eval mode (``use_noise``).

        Args:
            x: word ids, ``[maxlen, n]`` (int64), as :func:`ports.theano_imdb.prepare_data` pads them.
            mask: ``[maxlen, n]``, 1 at a word, 0 past the review's end.
            noise: the dropout mask to use in training mode instead of a fresh binomial draw (tests).

        Returns:
            class probabilities, ``[n, ydim]`` (softmax).
        """
        proj = self.pooled(x, mask)
        if self.use_dropout:
            # lstm.py dropout_layer: NOT rescaled. Training multiplies by a 0/1 mask with p(keep) = 0.5,
            # evaluation multiplies by 0.5 (the expected value), instead of the usual 1/keep scaling.
            if self.training:
                if noise is None:
                    noise = torch.bernoulli(torch.full_like(proj, 0.5), generator=self.generator)
                proj = proj * noise
            else:
                proj = proj * 0.5
        return torch.softmax(proj @ self.U + self.b, dim=1)

    def predict_proba(self, x, mask) -> Tensor:
        """lstm.py ``f_pred_prob``: evaluation-path probabilities [n, ydim] (no gradient)."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self.forward(x, mask)
        finally:
            self.train(was)

    def predict(self, x, mask) -> Tensor:
        """lstm.py ``f_pred``: the argmax class of each sample [n]."""
        return self.predict_proba(x, mask).argmax(dim=1)

    def cost(self, x, mask, y, decay_c: float = 0.0, noise: Optional[Tensor] = None) -> Tensor:
        """The tutorial's cost in the current mode: mean of -log(p_y + 1e-8), plus decay_c * sum(U**2)."""
        pred = self.forward(x, mask, noise=noise)
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y)
        if y.shape != (pred.shape[0],):
            raise ValueError(f"y has shape {list(y.shape)}; expected [{pred.shape[0]}] (one label per sample)")
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise ValueError(f"y must hold integer class labels; got {y.dtype}")
        # Labels given on the device are read there too, as word ids are (a batch built on the host reads none).
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.ydim):
            raise ValueError(f"y holds labels in [{int(y.min())}, {int(y.max())}]; the classifier has {self.ydim} "
                             "classes")
        y = _to_device(y.long(), pred.device)
        # build_model: off = 1e-8 (1e-6 for float16) inside the log, not a log-softmax.
        off = 1e-6 if pred.dtype == torch.float16 else 1e-8
        cost = -torch.log(pred[torch.arange(pred.shape[0], device=pred.device), y] + off).mean()
        if decay_c > 0.:
            cost = cost + decay_c * (self.U ** 2).sum()
        return cost


def _check_params(params: Mapping[str, np.ndarray], expect: Optional[Dict[str, tuple]] = None) -> None:
    missing = [n for n in PARAM_NAMES if n not in params]
    if missing:
        raise KeyError(f"parameters {missing} are missing (the tutorial's keys are {list(PARAM_NAMES)})")
    shapes = {n: tuple(np.shape(params[n])) for n in PARAM_NAMES}
    if expect is not None:
        for n in PARAM_NAMES:
            if shapes[n] != expect[n]:
                raise ValueError(f"parameter {n} has shape {list(shapes[n])}; the model has {list(expect[n])}")
        return
    if len(shapes["Wemb"]) != 2:
        raise ValueError(f"Wemb has shape {list(shapes['Wemb'])}; expected [n_words, dim_proj]")
    n_words, dim = shapes["Wemb"]
    ydim = shapes["b"][0] if len(shapes["b"]) == 1 else -1
    want = {"lstm_W": (dim, 4 * dim), "lstm_U": (dim, 4 * dim), "lstm_b": (4 * dim,), "U": (dim, ydim), "b": (ydim,)}
    for n, shape in want.items():
        if shapes[n] != shape:
            raise ValueError(f"parameter {n} has shape {list(shapes[n])}; expected {list(shape)} "
                             f"(dim_proj {dim} from Wemb {list(shapes['Wemb'])})")
