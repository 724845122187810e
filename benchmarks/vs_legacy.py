"""Each port against its legacy framework and against plain PyTorch of the same math, interleaved.

    python benchmarks/vs_legacy.py WORKLOAD [--threads N] [--rounds R] [--steps S] [--no-legacy]
    python benchmarks/vs_legacy.py WORKLOAD --contention

Workloads (steps/s unless noted):

    ptb-train            PTB small training step: batch 20 x 20 steps, H 200, 2 layers, vocab 10000, SGD
                         with TF's global-norm clipping (legacy: TensorFlow tf.compat.v1 graph)
    ptb-test             PTB test pass, batch 1 x 1 step, no gradient (tokens/s; legacy: TensorFlow)
    shakespeare-train    Shakespeare word LSTM training step: batch 100 x 50, H 128, vocab 8009, TF Adam
                         (legacy: TensorFlow)
    imdb-f64, imdb-f32   the Theano tutorial's update (f_grad_shared + f_update, adadelta) on the embedded
                         sample's real batches of 16, maxlen 100 (legacy: Theano 1.0.5 or PyTensor,
                         ``--legacy-framework``)
    caffe-lstm_short, caffe-lstm_long, caffe-deep_short, caffe-deep_long
                         one lstm_sequence training iteration (legacy: junhyukoh/caffe-lstm's
                         lstm_sequence.bin, ``--caffe-bin``)
    sine-train           the TF book's sine regressor's training step: batch 32 x one step of 10 features,
                         2 x 30 LSTM, Adagrad (legacy: TensorFlow; the Estimator's run([train_op, loss]))

Every workload runs three implementations: the legacy framework (in a second process of the same
interpreter, driven step count by step count from this one, so that its thread pools never share a
process with torch's; Caffe: the binary), the port, and "plain" PyTorch of the same math (nn.Embedding + nn.LSTM + nn.Linear, the
same loss, torch's clipping and a torch.optim step; for IMDB nn.LSTM over the padded batch with the
masked mean; for Caffe a bare loop over the fused kernel without the port's checks). Rounds of
``--steps`` steps alternate the order of the implementations (A B C, then C B A, ...) after one warm-up
round each, with a pause after each legacy round (its thread pools spin after their work and would
otherwise slow whichever side runs next); the table gives the median rate over the rounds, the min-max spread, and the ratios of the
medians. The load average is printed before and after: figures taken with a load above the thread count
were taken on a busy machine and say so.

Threads: ``--threads N`` (default 1) applies to every side: torch.set_num_threads, TensorFlow's
intra- and inter-op pools, OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS (set before any
library loads: Theano's BLAS, Caffe's OpenBLAS).

``--contention``: the port alone, at 1 thread on the machine as it is ("idle") against the port at the
programs' default thread count (compat.threads, followed from the step loop as the programs do) while one
extra CPU-bound process (a busy loop) runs, rounds interleaved; the ratio must stay >= 0.8.
``--busy-starts-later``: the default is chosen before the busy loop starts (on the idle machine) and has
to follow it.

The TensorFlow and PyTensor sides need ``tox -e legacy``'s environment (``.tox/legacy/bin/python``),
Theano 1.0.5 ``tox -e legacy-theano``'s, and Caffe the built binary; ``--no-legacy`` runs the port
against plain PyTorch alone in any environment.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def _early_threads(argv) -> int:
    """--threads, read before numpy/torch load so that the OpenMP/BLAS pools get the same size."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 1


REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

if __name__ == "__main__":
    _n = str(_early_threads(sys.argv[1:]))
    if "--contention" not in sys.argv:
        for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[_var] = _n

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List, Optional, Tuple  # noqa: E402

import torch  # noqa: E402

import plain_models  # noqa: E402
import port_runners  # noqa: E402

Runner = Callable[[int], float]  # run n steps, return the seconds they took

from workload_data import DEFAULT_STEPS, UNITS, WORKLOADS  # noqa: E402


def load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unavailable"


SETTLE_SECONDS = 0.3  # pause after each legacy round


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its finished child processes (Caffe's runs)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _accounted(runner: Runner, n: int) -> Tuple[float, float, float]:
    """``runner(n)``'s seconds, with the CPU seconds and wall seconds spent around it."""
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    seconds = runner(n)
    return seconds, cpu_seconds() - cpu0, time.perf_counter() - wall0


def _serve_legacy(conn, workload: str, options: dict) -> None:
    """The legacy side in its own process: build, then run ``n`` steps per request and answer (seconds,
    CPU seconds, wall seconds)."""
    import legacy_sides

    try:
        name, runner = legacy_sides.build(workload, argparse.Namespace(**options))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops with it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", name))
    while True:
        n = conn.recv()
        if n is None:
            return
        conn.send(_accounted(runner, n))


class LegacyProcess:
    """The legacy framework in a separate process of the same interpreter (TensorFlow's and OpenMP's
    thread pools spin after their work; in the port's process they would take its CPU time)."""

    def __init__(self, workload: str, args):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve_legacy, args=(child, workload, vars(args)), daemon=True)
        self.proc.start()
        status, self.name = self.conn.recv()
        if status != "ready":
            raise SystemExit(f"legacy side of {workload}: {self.name}")

    def __call__(self, n: int) -> float:
        return self.accounted(n)[0]

    def accounted(self, n: int) -> Tuple[float, float, float]:
        self.conn.send(n)
        return self.conn.recv()

    def close(self) -> None:
        if self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(10)


def build(workload: str, args) -> Tuple[Dict[str, Runner], str]:
    """The implementations of ``workload`` in table order (legacy first when requested)."""
    runners: Dict[str, Runner] = {}
    legacy_name = None
    if not args.no_legacy:
        legacy = LegacyProcess(workload, args)
        legacy_name = legacy.name
        runners[legacy_name] = legacy
    runners["port"] = port_runners.build(workload, args)
    runners["plain"] = plain_models.build(workload, args)
    return runners, legacy_name


def measure(runners: Dict[str, Runner], rounds: int, steps: int, warmup: int,
            cpu: Optional[Dict[str, List[float]]] = None) -> Dict[str, List[float]]:
    """Steps per second of every runner over ``rounds`` interleaved rounds (order reversed every round).
    ``cpu``, when given, receives each round's CPU seconds per wall second of that implementation (how many
    threads it really kept busy)."""
    names = list(runners)
    for name in names:
        runners[name](warmup)
    rates: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            runner = runners[name]
            if isinstance(runner, LegacyProcess):
                seconds, cpu_s, wall_s = runner.accounted(steps)
                # Its thread pools (OpenBLAS, Numba, TensorFlow) spin for a while after the work: the next
                # side starts once they have gone to sleep, not beside them.
                time.sleep(SETTLE_SECONDS)
            else:
                seconds, cpu_s, wall_s = _accounted(runner, steps)
            rates[name].append(steps / seconds)
            if cpu is not None:
                cpu.setdefault(name, []).append(cpu_s / wall_s)
    return rates


def report(workload: str, rates: Dict[str, List[float]], legacy_name: Optional[str], items: float, unit: str,
           cpu: Optional[Dict[str, List[float]]] = None) -> None:
    med = {n: statistics.median(v) * items for n, v in rates.items()}
    base = [n for n in (legacy_name, "plain") if n in med]
    width = max(len(n) for n in med) + 2
    header = f"{'implementation':<{width}} {unit + ' (median)':>18} {'min-max':>19}" + "".join(
        f" {'/ ' + ('legacy' if b == legacy_name else b):>10}" for b in base)
    print(header + (f" {'cpu/wall':>9}" if cpu else ""))
    for n, v in rates.items():
        lo, hi = min(v) * items, max(v) * items
        row = f"{n:<{width}} {med[n]:>18,.2f} {f'{lo:,.2f}-{hi:,.2f}':>19}"
        row += "".join(f" {med[n] / med[b]:>10.2f}" for b in base)
        if cpu and n in cpu:
            row += f" {statistics.median(cpu[n]):>9.2f}"
        print(row)


def contention(workload: str, args) -> None:
    """The port at 1 thread on the machine as it is, against the port at the programs' default thread count
    (compat.threads.configure_threads(None), chosen after the extra process has started, as a program
    started on a busy machine chooses it, and followed after every step) while one extra CPU-bound process
    runs; rounds interleaved."""
    from compat.threads import configure_threads

    following = {"threads": None}
    args.on_step = lambda: following["threads"] is not None and following["threads"].check()
    runner = port_runners.build(workload, args)
    chosen = []

    def configure(requested):
        following["threads"] = configure_threads(requested, owns_process=True)
        return following["threads"].count

    def one_thread(n: int) -> float:
        configure(1)
        return runner(n)

    def busy_default(n: int) -> float:
        if args.busy_starts_later:  # the count chosen on the idle machine; the busy process comes after
            first = configure(args.busy_threads)
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            if not args.busy_starts_later:  # (later: the round starts with the busy loop)
                time.sleep(0.3)
                first = configure(args.busy_threads)
            seconds = runner(n)
            chosen.append(f"{first}->{torch.get_num_threads()}")  # at the start, after the round
            return seconds
        finally:
            busy.kill()
            busy.wait()

    busy_name = "port, default + busy loop" if args.busy_threads is None else f"port, {args.busy_threads} threads + busy loop"
    rates = measure({"port, 1 thread": one_thread, busy_name: busy_default},
                    args.rounds, args.steps, args.warmup)
    report(workload, rates, None, 1.0, UNITS.get(workload, "steps/s"))
    names = list(rates)
    ratio = statistics.median(rates[names[1]]) / statistics.median(rates[names[0]])
    print(f"# thread counts beside the busy loop: {chosen}")
    print(f"contention ratio ({busy_name} / 1 thread without it): {ratio:.2f} (goal >= 0.8 at the default)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--threads", type=int, default=1, help="threads on every side (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per implementation (default 5)")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (default: per workload)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: steps / 4)")
    parser.add_argument("--no-legacy", action="store_true", help="port and plain PyTorch only")
    parser.add_argument("--legacy-framework", choices=("theano", "pytensor"), default=None,
                        help="IMDB: which Theano lineage (default: whichever imports, Theano first)")
    parser.add_argument("--legacy-mode", default=None,
                        help="Theano/PyTensor compile mode (default: the framework's own default, FAST_RUN)")
    parser.add_argument("--caffe-bin", default=os.environ.get("CAFFE_LSTM_BIN"),
                        help="junhyukoh/caffe-lstm's lstm_sequence.bin (or CAFFE_LSTM_BIN)")
    parser.add_argument("--contention", action="store_true",
                        help="port at 1 thread against the port at its default thread count beside a busy loop")
    parser.add_argument("--busy-threads", type=int, default=None,
                        help="--contention: run beside the busy loop at this thread count instead of the default")
    parser.add_argument("--busy-starts-later", action="store_true",
                        help="--contention: choose the default thread count first, then start the busy loop (the "
                             "default follows it at its next re-measurement)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.steps = args.steps or DEFAULT_STEPS[args.workload]
    args.warmup = args.warmup if args.warmup is not None else max(1, args.steps // 4)
    if not args.contention:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    unit = UNITS.get(args.workload, "steps/s")
    print(f"# {args.workload}: torch {torch.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"threads {'contention mode' if args.contention else args.threads}, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY')} GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}, "
          f"{args.rounds} rounds x {args.steps} steps "
          f"(+{args.warmup} warm-up), fastloop {port_runners.fastloop_state()}")
    print(f"# before: {load()}")
    if args.contention:
        contention(args.workload, args)
    else:
        runners, legacy_name = build(args.workload, args)
        cpu: Dict[str, List[float]] = {}
        try:
            rates = measure(runners, args.rounds, args.steps, args.warmup, cpu)
        finally:
            for r in runners.values():
                if isinstance(r, LegacyProcess):
                    r.close()
        report(args.workload, rates, legacy_name, 1.0, unit, cpu)
    print(f"# after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
