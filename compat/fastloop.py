"""A compiled step loop for tiny recurrences (batch 1-a few, hidden 7-50: the Caffe sequence example).

At these sizes the fused kernel (``torch.lstm``) and the core's Python step loop are dominated by fixed
costs: per-call weight repacking, and per step a dozen tensor operations and autograd nodes that each
cost microseconds while the arithmetic of one step takes tens of nanoseconds. Caffe itself runs one
small gemm per step. This module runs one layer's whole recurrence, forward and backward, as a plain C
loop over raw CPU memory, with the semantics of :func:`compat.lstm.lstm`'s step loop:

- ``cont`` [T, B] (Caffe): h and c are multiplied by ``cont[t]`` before step t;
- ``grad_clip`` > 0: the gate pre-activation gradients are clamped to +-grad_clip at every step
  (junhyukoh/caffe-lstm ``clipping_threshold``, lstm_layer.cpp ``Backward_cpu`` ``caffe_bound``);
- ``weight_grad_ignores_cont``: weight_hh's gradient is taken against the raw h_{t-1}, also where
  ``cont`` zeroed it (junhyukoh lstm_layer.cpp ``Backward_cpu`` accumulates dW_h at every step).

The gate blocks may come in any order (``gate_order``, a permutation of "ifgo" naming the blocks as
stored), so a layer hands its blobs over as it keeps them, without a per-forward conversion.

The C source below is compiled once per machine with the C compiler found as ``$CC``, ``cc`` or
``gcc`` (about a second) into ``$LEGACY_LSTM_CACHE`` (default ``~/.cache/legacy-lstm``), keyed by a hash
of the source, the flags and the compiler, and loaded with ctypes; no torch headers are involved.
Where no compiler is found or the build fails, :func:`available` returns False after one warning, and
callers run their torch path (same numbers). ``LEGACY_LSTM_FASTLOOP=0`` switches the compiled loop off.
"""
from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Optional, Tuple

import torch
from torch import Tensor

_C_SOURCE = r"""
#include <math.h>
#include <string.h>
#ifdef FASTLOOP_SIMD_MATH
/* glibc's libmvec has vector exp and tanh; declaring them so lets the compiler vectorize the activation
   loops without -ffast-math (IEEE semantics kept, NaN included; libmvec is within 4 ulp). */
float expf(float) __attribute__((simd("notinbranch")));
float tanhf(float) __attribute__((simd("notinbranch")));
double exp(double) __attribute__((simd("notinbranch")));
double tanh(double) __attribute__((simd("notinbranch")));
#endif

/* One LSTM layer over T steps and B streams, the streams in lockstep (each row of W_hh is read once a
   step for all of them). Gate blocks of the 4H-wide rows are found at offsets oi, of, og, oo (in units
   of H). xproj [T,B,4H]: the input term x W_ih^T + biases. wht [H,4H]: W_hh transposed. cont [T,B] or
   NULL. Saved for backward: act [T,B,4H] (the activated gates in storage order), cells [T,B,H] (c_t),
   tanhc [T,B,H]. Forward without saving passes act = cells = tanhc = NULL. work: forward_work(B, H)
   values (_forward_work in Python). The activations run over whole vectors of 16 (zero padding), so that
   no scalar exp or tanh call handles a remainder (at H 7-23 the remainders were most of the calls). */
#define DEFINE_LSTM(REAL, SUF, EXP, TANH)                                                               \
void lstm_forward_##SUF(long T, long B, long H, long oi, long of, long og, long oo,                     \
                        const REAL *xproj, const REAL *wht, const REAL *cont,                           \
                        const REAL *h0, const REAL *c0, REAL *out, REAL *hT, REAL *cT,                  \
                        REAL *act, REAL *cells, REAL *tanhc, REAL *work) {                              \
    long G = 4 * H;                                                                                     \
    long GP = (G + 15) / 16 * 16, HP = (H + 15) / 16 * 16;  /* padded: whole vector calls, no tails */  \
    REAL *pre = work;             /* [B,GP] pre-activations (the padding stays 0) */                    \
    REAL *hsc = pre + B * GP;     /* [B,H] scaled previous h */                                         \
    REAL *sg = hsc + B * H;       /* [GP] sigmoids */                                                   \
    REAL *ta = sg + GP;           /* [HP] tanh arguments (the padding stays 0) */                       \
    REAL *tv = ta + HP;           /* [HP] tanh values */                                                \
    memset(work, 0, sizeof(REAL) * (B * GP + B * H + GP + 2 * HP));                                     \
    for (long t = 0; t < T; ++t) {                                                                      \
        for (long n = 0; n < B; ++n) {                                                                  \
            const REAL *hp = t ? out + ((t - 1) * B + n) * H : h0 + n * H;                              \
            REAL s = cont ? cont[t * B + n] : (REAL)1;                                                  \
            memcpy(pre + n * GP, xproj + (t * B + n) * G, sizeof(REAL) * G);                            \
            for (long k = 0; k < H; ++k) hsc[n * H + k] = hp[k] * s;                                    \
        }                                                                                               \
        for (long k = 0; k < H; ++k) {                                                                  \
            const REAL *w = wht + k * G;                                                                \
            for (long n = 0; n < B; ++n) {                                                              \
                REAL hk = hsc[n * H + k];                                                               \
                REAL *a = pre + n * GP;                                                                 \
                for (long j = 0; j < G; ++j) a[j] += hk * w[j];                                         \
            }                                                                                           \
        }                                                                                               \
        for (long n = 0; n < B; ++n) {                                                                  \
            const REAL *cp = t ? (cells ? cells + ((t - 1) * B + n) * H : cT + n * H) : c0 + n * H;     \
            REAL s = cont ? cont[t * B + n] : (REAL)1;                                                  \
            const REAL *a = pre + n * GP;                                                               \
            REAL *o = out + (t * B + n) * H;                                                            \
            REAL *ac = act ? act + (t * B + n) * G : pre + n * GP;                                      \
            REAL *cc = cells ? cells + (t * B + n) * H : cT + n * H;                                    \
            REAL *tc = tanhc ? tanhc + (t * B + n) * H : hsc + n * H;                                   \
            for (long j = 0; j < GP; ++j) sg[j] = (REAL)1 / ((REAL)1 + EXP(-a[j]));                     \
            for (long k = 0; k < H; ++k) ta[k] = a[og * H + k];                                         \
            for (long k = 0; k < HP; ++k) tv[k] = TANH(ta[k]);                                          \
            for (long j = 0; j < G; ++j) ac[j] = sg[j];                                                 \
            REAL *gi = ac + oi * H, *gf = ac + of * H, *gg = ac + og * H, *go = ac + oo * H;            \
            for (long k = 0; k < H; ++k) gg[k] = tv[k];                                                 \
            for (long k = 0; k < H; ++k) cc[k] = gf[k] * (cp[k] * s) + gi[k] * gg[k];                   \
            for (long k = 0; k < H; ++k) ta[k] = cc[k];                                                 \
            for (long k = 0; k < HP; ++k) tv[k] = TANH(ta[k]);                                          \
            for (long k = 0; k < H; ++k) tc[k] = tv[k];                                                 \
            for (long k = 0; k < H; ++k) o[k] = go[k] * tc[k];                                          \
        }                                                                                               \
    }                                                                                                   \
    for (long n = 0; n < B; ++n) {                                                                      \
        memcpy(hT + n * H, out + ((T - 1) * B + n) * H, sizeof(REAL) * H);                              \
        if (cells) memcpy(cT + n * H, cells + ((T - 1) * B + n) * H, sizeof(REAL) * H);                 \
    }                                                                                                   \
}                                                                                                       \
/* dout [T,B,H] (may be NULL: zero), dhT, dcT [B,H] (may be NULL). Writes dgates [T,B,4H] (clamped      \
   pre-activation gradients, storage order), dh0, dc0 [B,H], and (dw not NULL) dw [4H,H] = sum over     \
   steps of dgates_t^T (cont_t h_{t-1}), or of dgates_t^T h_{t-1} with raw != 0 (the fork's dW_h).      \
   wh: W_hh [4H,H], wht: W_hh transposed [H,4H]; h0, c0: the initial state; out: the forward's outputs; \
   work: 4H*H scratch values. */                                                                        \
void lstm_backward_##SUF(long T, long B, long H, long oi, long of, long og, long oo,                    \
                         const REAL *wh, const REAL *wht, const REAL *cont, const REAL *c0,             \
                         const REAL *act, const REAL *cells, const REAL *tanhc,                         \
                         const REAL *dout, const REAL *dhT, const REAL *dcT, REAL clip,                 \
                         REAL *dgates, REAL *dh0, REAL *dc0,                                            \
                         const REAL *h0, const REAL *out, long raw, REAL *dw, REAL *work) {             \
    long G = 4 * H;                                                                                     \
    REAL *dwt = work;  /* [H,G] */                                                                      \
    if (dw) memset(dwt, 0, sizeof(REAL) * G * H);                                                       \
    for (long n = 0; n < B; ++n) {                                                                      \
        for (long k = 0; k < H; ++k) {                                                                  \
            dh0[n * H + k] = dhT ? dhT[n * H + k] : (REAL)0;                                            \
            dc0[n * H + k] = dcT ? dcT[n * H + k] : (REAL)0;                                            \
        }                                                                                               \
    }                                                                                                   \
    for (long t = T - 1; t >= 0; --t) {                                                                 \
        for (long n = 0; n < B; ++n) {                                                                  \
            REAL *dh = dh0 + n * H, *dc = dc0 + n * H;                                                  \
            const REAL *ac = act + (t * B + n) * G;                                                     \
            const REAL *tc = tanhc + (t * B + n) * H;                                                   \
            const REAL *cp = t ? cells + ((t - 1) * B + n) * H : c0 + n * H;                            \
            REAL s = cont ? cont[t * B + n] : (REAL)1;                                                  \
            REAL *dg = dgates + (t * B + n) * G;                                                        \
            const REAL *dout_t = dout ? dout + (t * B + n) * H : 0;                                     \
            for (long k = 0; k < H; ++k) {                                                              \
                REAL gi = ac[oi * H + k], gf = ac[of * H + k], gg = ac[og * H + k], go = ac[oo * H + k]; \
                REAL th = tc[k];                                                                        \
                REAL dhk = dh[k] + (dout_t ? dout_t[k] : (REAL)0);                                      \
                REAL dck = dc[k] + dhk * go * ((REAL)1 - th * th);                                      \
                REAL d_o = dhk * th * go * ((REAL)1 - go);                                              \
                REAL d_i = dck * gg * gi * ((REAL)1 - gi);                                              \
                REAL d_g = dck * gi * ((REAL)1 - gg * gg);                                              \
                REAL d_f = dck * (cp[k] * s) * gf * ((REAL)1 - gf);                                     \
                if (clip > 0) {                                                                         \
                    d_i = d_i > clip ? clip : (d_i < -clip ? -clip : d_i);                              \
                    d_f = d_f > clip ? clip : (d_f < -clip ? -clip : d_f);                              \
                    d_g = d_g > clip ? clip : (d_g < -clip ? -clip : d_g);                              \
                    d_o = d_o > clip ? clip : (d_o < -clip ? -clip : d_o);                              \
                }                                                                                       \
                dg[oi * H + k] = d_i; dg[of * H + k] = d_f; dg[og * H + k] = d_g; dg[oo * H + k] = d_o; \
                dc[k] = dck * gf * s;                                                                   \
            }                                                                                           \
        }                                                                                               \
        if (dw) {   /* dwt [H,G] += (f h_{t-1}) outer dg, stream by stream: rows of 4H vectorize well */ \
            for (long k = 0; k < H; ++k) {                                                              \
                REAL *w = dwt + k * G;                                                                  \
                for (long n = 0; n < B; ++n) {                                                          \
                    const REAL *hp = t ? out + ((t - 1) * B + n) * H : h0 + n * H;                      \
                    REAL f = raw ? (REAL)1 : (cont ? cont[t * B + n] : (REAL)1);                        \
                    REAL hk = hp[k] * f;                                                                \
                    const REAL *dg = dgates + (t * B + n) * G;                                          \
                    for (long j = 0; j < G; ++j) w[j] += hk * dg[j];                                    \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
        if (H >= 32) {  /* dh = s * (dg W): rows of W (H wide), each read once for every stream ... */  \
            for (long n = 0; n < B; ++n) for (long k = 0; k < H; ++k) dh0[n * H + k] = 0;               \
            for (long j = 0; j < G; ++j) {                                                              \
                const REAL *w = wh + j * H;                                                             \
                for (long n = 0; n < B; ++n) {                                                          \
                    REAL d = dgates[(t * B + n) * G + j];                                               \
                    REAL *dh = dh0 + n * H;                                                             \
                    for (long k = 0; k < H; ++k) dh[k] += d * w[k];                                     \
                }                                                                                       \
            }                                                                                           \
            for (long n = 0; n < B; ++n) {                                                              \
                REAL s = cont ? cont[t * B + n] : (REAL)1;                                              \
                for (long k = 0; k < H; ++k) dh0[n * H + k] *= s;                                       \
            }                                                                                           \
        } else for (long n = 0; n < B; ++n) {  /* ... or, for small H, dot products of 4H */            \
            REAL s = cont ? cont[t * B + n] : (REAL)1;                                                  \
            const REAL *dg = dgates + (t * B + n) * G;                                                  \
            for (long k = 0; k < H; ++k) {                                                              \
                const REAL *w = wht + k * G;                                                            \
                REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                 \
                long j = 0;                                                                             \
                for (; j + 8 <= G; j += 8)                                                              \
                    for (int u = 0; u < 8; ++u) acc[u] += w[j + u] * dg[j + u];                         \
                REAL sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])); \
                for (; j < G; ++j) sum += w[j] * dg[j];                                                 \
                dh0[n * H + k] = sum * s;                                                               \
            }                                                                                           \
        }                                                                                               \
    }                                                                                                   \
    if (dw) for (long j = 0; j < G; ++j) for (long k = 0; k < H; ++k) dw[j * H + k] = dwt[k * G + j];   \
}                                                                                                       \
/* The input term xproj [N,G] = x [N,I] W_ih^T + b over N = T*B rows, from wt = W_ih^T [I,G] (rows of 4H \
   vectorize well) and b [G] or NULL. */                                                                \
void lstm_input_forward_##SUF(long N, long I, long G, const REAL *x, const REAL *wt, const REAL *b,     \
                              REAL *out) {                                                              \
    for (long n = 0; n < N; ++n) {                                                                      \
        REAL *o = out + n * G;                                                                          \
        const REAL *xn = x + n * I;                                                                     \
        if (b) memcpy(o, b, sizeof(REAL) * G); else memset(o, 0, sizeof(REAL) * G);                     \
        for (long k = 0; k < I; ++k) {                                                                  \
            REAL xk = xn[k];                                                                            \
            const REAL *w = wt + k * G;                                                                 \
            for (long j = 0; j < G; ++j) o[j] += xk * w[j];                                             \
        }                                                                                               \
    }                                                                                                   \
}                                                                                                       \
/* Its backward from dgates [N,G]: dx [N,I] = dgates W_ih (NULL: not wanted), dwt [I,G] = x^T dgates     \
   (W_ih's gradient, transposed; NULL: not wanted), db [G] = the column sums of dgates (NULL: not wanted). */ \
void lstm_input_backward_##SUF(long N, long I, long G, const REAL *dg, const REAL *x, const REAL *wt,    \
                               REAL *dx, REAL *dwt, REAL *db) {                                         \
    if (dwt) memset(dwt, 0, sizeof(REAL) * I * G);                                                      \
    if (db) memset(db, 0, sizeof(REAL) * G);                                                            \
    for (long n = 0; n < N; ++n) {                                                                      \
        const REAL *d = dg + n * G;                                                                     \
        const REAL *xn = x + n * I;                                                                     \
        for (long k = 0; k < I; ++k) {                                                                  \
            if (dx) {                                                                                   \
                const REAL *w = wt + k * G;                                                             \
                REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                 \
                long j = 0;                                                                             \
                for (; j + 8 <= G; j += 8)                                                              \
                    for (int u = 0; u < 8; ++u) acc[u] += w[j + u] * d[j + u];                          \
                REAL sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])); \
                for (; j < G; ++j) sum += w[j] * d[j];                                                  \
                dx[n * I + k] = sum;                                                                    \
            }                                                                                           \
            if (dwt) {                                                                                  \
                REAL xk = xn[k];                                                                        \
                REAL *dw = dwt + k * G;                                                                 \
                for (long j = 0; j < G; ++j) dw[j] += xk * d[j];                                        \
            }                                                                                           \
        }                                                                                               \
        if (db) for (long j = 0; j < G; ++j) db[j] += d[j];                                             \
    }                                                                                                   \
}                                                                                                       \

DEFINE_LSTM(float, f32, expf, tanhf)
DEFINE_LSTM(double, f64, exp, tanh)
"""

_FLAGS = ["-O3", "-shared", "-fPIC", "-std=gnu99", "-fno-math-errno"]
# Tried in order: vectorized for this processor with glibc's vector math, then portable scalar code.
_VARIANTS = (["-march=native", "-DFASTLOOP_SIMD_MATH", "-lmvec"], [])
_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_tried = False
_failure: Optional[str] = None


def cache_dir() -> Path:
    root = os.environ.get("LEGACY_LSTM_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "legacy-lstm"


def _compiler() -> Optional[str]:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_signature() -> str:
    """What -march=native depends on: the processor's model and feature flags."""
    try:
        with open("/proc/cpuinfo") as fh:
            lines = [ln for ln in fh if ln.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        import platform

        return platform.processor() or platform.machine()


def _compile(cc: str, extra: list, target: Path) -> Optional[str]:
    """Build into ``target`` atomically; returns None on success, else the compiler's last line."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "fastloop.c"
        src.write_text(_C_SOURCE)
        out = Path(tmp) / "fastloop.so"
        libs = [f for f in extra if f.startswith("-l")]
        flags = [f for f in extra if not f.startswith("-l")]
        proc = subprocess.run([cc, *_FLAGS, *flags, str(src), "-o", str(out), *libs, "-lm"], capture_output=True,
                              text=True, timeout=120)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            return lines[-1] if lines else f"exit status {proc.returncode}"
        os.replace(out, target)  # atomic: a concurrent build writes the same bytes
    return None


def _build() -> ctypes.CDLL:
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC, or install gcc)")
    errors = []
    for extra in _VARIANTS:
        key_parts = [_C_SOURCE, " ".join(_FLAGS + extra), cc, _cpu_signature() if extra else ""]
        key = hashlib.sha256("\0".join(key_parts).encode()).hexdigest()[:16]
        target = cache_dir() / f"fastloop-{key}.so"
        if not target.exists():
            error = _compile(cc, extra, target)
            if error is not None:
                errors.append(error)
                continue
        try:
            lib = ctypes.CDLL(str(target))
        except OSError as exc:
            errors.append(str(exc))
            continue
        L, P = ctypes.c_long, ctypes.c_void_p
        for suffix, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
            forward, backward = getattr(lib, f"lstm_forward_{suffix}"), getattr(lib, f"lstm_backward_{suffix}")
            forward.restype = backward.restype = None
            forward.argtypes = [L] * 7 + [P] * 12
            backward.argtypes = [L] * 7 + [P] * 10 + [real] + [P] * 5 + [L] + [P] * 2
            in_forward = getattr(lib, f"lstm_input_forward_{suffix}")
            in_backward = getattr(lib, f"lstm_input_backward_{suffix}")
            in_forward.restype = in_backward.restype = None
            in_forward.argtypes = [L] * 3 + [P] * 4
            in_backward.argtypes = [L] * 3 + [P] * 6
        return lib
    raise RuntimeError(f"{Path(cc).name} could not build it: {errors[-1]}")


def _library() -> Optional[ctypes.CDLL]:
    global _lib, _tried, _failure
    if _tried:
        return _lib
    with _lock:
        if not _tried:
            if os.environ.get("LEGACY_LSTM_FASTLOOP", "1") == "0":
                _failure = "switched off by LEGACY_LSTM_FASTLOOP=0"
            else:
                try:
                    _lib = _build()
                except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                    _failure = str(exc)
                    warnings.warn(f"compat.fastloop: compiled step loop unavailable ({_failure}); "
                                  "using the torch path (same numbers, slower for tiny recurrences)",
                                  RuntimeWarning, stacklevel=3)
            _tried = True
    return _lib


def available() -> bool:
    """Whether the compiled loop can run here (compiles it on the first call)."""
    return _library() is not None


def unavailable_reason() -> Optional[str]:
    _library()
    return _failure


def supports(x: Tensor) -> bool:
    """Whether :func:`lstm_layer` can run on tensors like ``x`` (CPU float32/float64) on this machine."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and available()


_REAL = {torch.float32: ("f32", ctypes.c_float), torch.float64: ("f64", ctypes.c_double)}


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def _forward_work(B: int, H: int) -> int:
    """Scratch values the C forward needs: padded pre-activations, scaled h, sigmoid and tanh vectors."""
    gp, hp = (4 * H + 15) // 16 * 16, (H + 15) // 16 * 16
    return B * gp + B * H + gp + 2 * hp


# Where the i, f, g and o blocks sit in a 4H row stored in each gate order (a constant table: the lookup is
# part of every one-step call of the PTB test pass).
_OFFSETS = {"".join(order): tuple("".join(order).index(g) for g in "ifgo")
            for order in itertools.permutations("ifgo")}


def _offsets(gate_order: str) -> Tuple[int, int, int, int]:
    """Where the i, f, g and o blocks sit in a 4H row stored in ``gate_order``."""
    offsets = _OFFSETS.get(gate_order) if isinstance(gate_order, str) else None
    if offsets is None:
        raise ValueError(f"gate_order must be a permutation of 'ifgo', not {gate_order!r}")
    return offsets  # type: ignore[return-value]


def _check_layer_args(xproj: Tensor, weight_hh: Tensor, h0: Tensor, c0: Tensor, cont: Optional[Tensor],
                      grad_clip: Optional[float], G: Optional[int] = None) -> None:
    """The shapes, dtypes and device the loop needs, each error naming the tensor. ``xproj``: the input term
    [T, B, 4H], or (with ``G``) the layer's input [T, B, I], whose term is 4H = G wide."""
    if G is None:
        if xproj.dim() != 3 or xproj.shape[2] % 4 or xproj.shape[0] == 0:
            raise ValueError(f"xproj has shape {list(xproj.shape)}; expected [T >= 1, B, 4H]")
        G = xproj.shape[2]
    T, B = xproj.shape[0], xproj.shape[1]
    H = G // 4
    if tuple(weight_hh.shape) != (G, H):
        raise ValueError(f"weight_hh has shape {list(weight_hh.shape)}; expected [4H, H] = [{G}, {H}]")
    for name, s in (("h0", h0), ("c0", c0)):
        if tuple(s.shape) != (B, H):
            raise ValueError(f"{name} has shape {list(s.shape)}; expected [B, H] = [{B}, {H}]")
    if cont is not None and tuple(cont.shape) != (T, B):
        raise ValueError(f"cont has shape {list(cont.shape)}; expected [T, B] = [{T}, {B}]")
    for name, t in (("weight_hh", weight_hh), ("h0", h0), ("c0", c0), ("cont", cont)):
        if t is not None and (t.dtype != xproj.dtype or t.device != xproj.device):
            raise ValueError(f"{name} has dtype {t.dtype} on {t.device}; xproj has {xproj.dtype} on {xproj.device}")
    if not supports(xproj):
        raise RuntimeError(f"compat.fastloop cannot run here ({unavailable_reason() or 'needs CPU float32/64'})")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be > 0 (None for no clamp); got {grad_clip}")


def _loop_forward(ctx, xproj, weight_hh, h0, c0, cont, offsets, grad_clip, weight_grad_ignores_cont, save: bool):
    """The recurrence's forward: ``(out, h_T, c_T, saved)``, ``saved`` the tensors its backward needs (with
    ``save``; for ``ctx.save_for_backward``), the rest of what it needs put on ``ctx``."""
    T, B, G = xproj.shape
    H = G // 4
    suffix, _ = _REAL[xproj.dtype]
    xproj = xproj.contiguous()
    wht = weight_hh.detach().t().contiguous()
    h0c, c0c = h0.detach().contiguous(), c0.detach().contiguous()
    contc = None if cont is None else cont.contiguous()
    out = xproj.new_empty(T, B, H)
    hT, cT = xproj.new_empty(B, H), xproj.new_empty(B, H)
    act = xproj.new_empty(T, B, G) if save else None
    cells = xproj.new_empty(T, B, H) if save else None
    tanhc = xproj.new_empty(T, B, H) if save else None
    work = xproj.new_empty(_forward_work(B, H))
    getattr(_library(), f"lstm_forward_{suffix}")(
        T, B, H, *offsets,
        _ptr(xproj), _ptr(wht), _ptr(contc), _ptr(h0c), _ptr(c0c), _ptr(out), _ptr(hT), _ptr(cT),
        _ptr(act), _ptr(cells), _ptr(tanhc), _ptr(work))
    saved = (weight_hh, h0c, c0c, contc, act, cells, tanhc, out) if save else ()
    ctx.wht = wht  # the transposed copy, for the backward's small-H loop order
    ctx.offsets, ctx.grad_clip, ctx.ignores_cont = offsets, grad_clip, weight_grad_ignores_cont
    return out, hT, cT, saved


def _loop_backward(ctx, saved, dout, dhT, dcT, want_weight_grad: bool):
    """(dgates [T, B, 4H], W_hh's gradient or None, dh0, dc0) of the recurrence ``_loop_forward`` saved."""
    weight_hh, h0, c0, cont, act, cells, tanhc, out = saved
    T, B, G = act.shape
    H = G // 4
    suffix, _ = _REAL[act.dtype]
    wh = weight_hh.detach().contiguous()
    wht = ctx.wht  # kept (not cleared): a retained graph may run backward again
    dgates = act.new_empty(T, B, G)
    dh0, dc0 = act.new_empty(B, H), act.new_empty(B, H)
    # dW_hh = sum_t dgates_t^T (cont_t * h_{t-1}), in the loop; the fork's defect uses the raw h_{t-1}.
    grad_w = act.new_empty(G, H) if want_weight_grad else None
    work = act.new_empty(G * H)
    # Contiguous copies held in names: the C call must not read a temporary that was already freed.
    dout, dhT, dcT = (None if g is None else g.contiguous() for g in (dout, dhT, dcT))
    getattr(_library(), f"lstm_backward_{suffix}")(
        T, B, H, *ctx.offsets,
        _ptr(wh), _ptr(wht), _ptr(cont), _ptr(c0), _ptr(act), _ptr(cells), _ptr(tanhc),
        _ptr(dout), _ptr(dhT), _ptr(dcT), float(ctx.grad_clip or 0.0),
        _ptr(dgates), _ptr(dh0), _ptr(dc0), _ptr(h0), _ptr(out), int(bool(ctx.ignores_cont)),
        _ptr(grad_w), _ptr(work))
    return dgates, grad_w, dh0, dc0


class _LSTMLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xproj, weight_hh, h0, c0, cont, offsets, grad_clip, weight_grad_ignores_cont):
        out, hT, cT, saved = _loop_forward(ctx, xproj, weight_hh, h0, c0, cont, offsets, grad_clip,
                                           weight_grad_ignores_cont, save=any(ctx.needs_input_grad[:4]))
        ctx.save_for_backward(*saved)
        return out, hT, cT

    @staticmethod
    def backward(ctx, dout, dhT, dcT):
        return (*_loop_backward(ctx, ctx.saved_tensors, dout, dhT, dcT, ctx.needs_input_grad[1]),
                None, None, None, None)


class _LSTMLayerFromInput(torch.autograd.Function):
    """:class:`_LSTMLayer` with the input term computed in the loop too: x, W_ih and the bias in, their
    gradients out (no matrix product of torch's, so no parallel region of its, at these sizes)."""

    @staticmethod
    def forward(ctx, x, weight_ih, bias, weight_hh, h0, c0, cont, offsets, grad_clip, weight_grad_ignores_cont):
        T, B, I = x.shape
        G = weight_ih.shape[0]
        suffix, _ = _REAL[x.dtype]
        xc = x.detach().contiguous()
        wit = weight_ih.detach().t().contiguous()
        bc = None if bias is None else bias.detach().contiguous()
        xproj = x.new_empty(T, B, G)
        getattr(_library(), f"lstm_input_forward_{suffix}")(T * B, I, G, xc.data_ptr(), wit.data_ptr(), _ptr(bc),
                                                             xproj.data_ptr())
        out, hT, cT, saved = _loop_forward(ctx, xproj, weight_hh, h0, c0, cont, offsets, grad_clip,
                                           weight_grad_ignores_cont, save=any(ctx.needs_input_grad[:6]))
        ctx.save_for_backward(*saved, xc, wit)
        return out, hT, cT

    @staticmethod
    def backward(ctx, dout, dhT, dcT):
        saved = ctx.saved_tensors
        dgates, grad_whh, dh0, dc0 = _loop_backward(ctx, saved[:-2], dout, dhT, dcT, ctx.needs_input_grad[3])
        xc, wit = saved[-2:]
        T, B, I = xc.shape
        G = wit.shape[1]
        suffix, _ = _REAL[xc.dtype]
        dx = xc.new_empty(T, B, I) if ctx.needs_input_grad[0] else None
        dwt = xc.new_empty(I, G) if ctx.needs_input_grad[1] else None
        db = xc.new_empty(G) if ctx.needs_input_grad[2] else None
        getattr(_library(), f"lstm_input_backward_{suffix}")(T * B, I, G, dgates.data_ptr(), xc.data_ptr(),
                                                              wit.data_ptr(), _ptr(dx), _ptr(dwt), _ptr(db))
        return dx, None if dwt is None else dwt.t(), db, grad_whh, dh0, dc0, None, None, None, None


def lstm_layer_from_input(x: Tensor, weight_ih: Tensor, bias: Optional[Tensor], weight_hh: Tensor, h0: Tensor,
                          c0: Tensor, cont: Optional[Tensor] = None, *, gate_order: str = "ifgo",
                          grad_clip: Optional[float] = None, weight_grad_ignores_cont: bool = False
                          ) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`lstm_layer` from the layer's input: ``x`` [T, B, I], ``weight_ih`` [4H, I], ``bias`` [4H] or None
    (rows in ``gate_order``), the input term ``x W_ih^T + b`` computed in the loop as well. Gradients flow to
    x, weight_ih, bias, weight_hh, h0 and c0."""
    if x.dim() != 3 or x.shape[0] == 0:
        raise ValueError(f"x has shape {list(x.shape)}; expected [T >= 1, B, I]")
    G = weight_hh.shape[0]
    if weight_ih.dim() != 2 or tuple(weight_ih.shape) != (G, x.shape[2]):
        raise ValueError(f"weight_ih has shape {list(weight_ih.shape)}; expected [4H, I] = [{G}, {x.shape[2]}]")
    if bias is not None and tuple(bias.shape) != (G,):
        raise ValueError(f"bias has shape {list(bias.shape)}; expected [4H] = [{G}]")
    for name, t in (("weight_ih", weight_ih), ("bias", bias)):
        if t is not None and (t.dtype != x.dtype or t.device != x.device):
            raise ValueError(f"{name} has dtype {t.dtype} on {t.device}; x has {x.dtype} on {x.device}")
    if G % 4 or G == 0:
        raise ValueError(f"weight_hh has shape {list(weight_hh.shape)}; expected [4H, H]")
    _check_layer_args(x, weight_hh, h0, c0, cont, grad_clip, G)
    return _LSTMLayerFromInput.apply(x, weight_ih, bias, weight_hh, h0, c0, cont, _offsets(gate_order), grad_clip,
                                     weight_grad_ignores_cont)


def lstm_layer(xproj: Tensor, weight_hh: Tensor, h0: Tensor, c0: Tensor, cont: Optional[Tensor] = None, *,
               gate_order: str = "ifgo", grad_clip: Optional[float] = None,
               weight_grad_ignores_cont: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer's recurrence on the compiled loop: ``(out [T, B, H], h_T [B, H], c_T [B, H])``.

    ``xproj`` [T, B, 4H]: the input term of the gate pre-activations (``x W_ih^T + b``), blocks in
    ``gate_order``; ``weight_hh`` [4H, H] in the same order; ``h0``, ``c0`` [B, H]; ``cont`` [T, B] or
    None. Gradients flow to ``xproj``, ``weight_hh``, ``h0`` and ``c0`` (not ``cont``). Call only where
    :func:`supports` is true.
    """
    _check_layer_args(xproj, weight_hh, h0, c0, cont, grad_clip)
    return _LSTMLayer.apply(xproj, weight_hh, h0, c0, cont, _offsets(gate_order), grad_clip,
                            weight_grad_ignores_cont)


def lstm_layer_inference(xproj: Tensor, weight_hh: Tensor, h0: Tensor, c0: Tensor, cont: Optional[Tensor] = None,
                         *, gate_order: str = "ifgo") -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`lstm_layer` without autograd, for evaluation one step at a time, where the fused kernel's
    per-call weight repacking costs more than the step. ``weight_hh`` [4H, H] as :func:`lstm_layer` takes
    it; where it is the transpose of a contiguous [H, 4H] tensor (a TF kernel's lower half, handed over as
    ``kernel[H:].t()``), the loop reads that memory in place: no copy of the weights per call."""
    T, B, G = xproj.shape
    H = G // 4
    if tuple(weight_hh.shape) != (G, H):
        raise ValueError(f"weight_hh has shape {list(weight_hh.shape)}; expected [4H, H] = [{G}, {H}]")
    if not supports(xproj):
        raise RuntimeError(f"compat.fastloop cannot run here ({unavailable_reason() or 'needs CPU float32/64'})")
    if torch.is_grad_enabled() and (xproj.requires_grad or weight_hh.requires_grad):
        raise ValueError("lstm_layer_inference records no gradient: call it without autograd (torch.no_grad())")
    suffix, _ = _REAL[xproj.dtype]
    # W_hh^T row-major [H, 4H]: weight_hh's own memory when its strides are (1, 4H), else a copy
    wht = weight_hh if weight_hh.stride() == (1, G) else weight_hh.t().contiguous()
    xproj = xproj.contiguous()
    h0c, c0c = h0.contiguous(), c0.contiguous()
    contc = None if cont is None else cont.to(xproj.dtype).contiguous()
    out, hT, cT = xproj.new_empty(T, B, H), xproj.new_empty(B, H), xproj.new_empty(B, H)
    work = xproj.new_empty(_forward_work(B, H))
    getattr(_library(), f"lstm_forward_{suffix}")(
        T, B, H, *_offsets(gate_order), xproj.data_ptr(), wht.data_ptr(), _ptr(contc), h0c.data_ptr(),
        c0c.data_ptr(), out.data_ptr(), hT.data_ptr(), cT.data_ptr(), None, None, None, work.data_ptr())
    return out, hT, cT


__all__ = ["available", "supports", "lstm_layer", "lstm_layer_from_input", "lstm_layer_inference",
           "unavailable_reason", "cache_dir"]
