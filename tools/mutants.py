"""Mutation check: one-line edits of the ports and the core that the test suite must catch.

    python tools/mutants.py                  # every mutant (10 to 30 minutes on two cores; nice it)
    python tools/mutants.py --only caffe-euclidean-half ptb-input-dropout
    python tools/mutants.py --list           # the mutants, and whether each still applies to this tree

Each mutant names a file, an exact piece of one line (it must occur exactly once in the file), its
replacement, and the test files that should catch it. The tree (tracked and untracked, not ignored, files)
is copied once to a temporary directory; the worktree is never edited. For each mutant the copy's file is
edited, its test files run there (``pytest -x``, ``HYPOTHESIS_PROFILE=ci``: derandomized, the same
examples every run; the Hypothesis database removed before each run so no mutant inherits another's
failing example), and the file is restored. Killed: some test failed (or the run exceeded ``--timeout``);
survived: every test passed; not applied: the text is no longer in the file (the code moved on: update the
mutant). The report is a Markdown table and the kill rate over the applied mutants. A baseline run of every
test file on the unmutated copy must pass first.

Not part of the test suite or CI: it reruns test files dozens of times. Results and the survivors' notes
are in docs/equivalence.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent

CORE = ("tests/test_core.py", "tests/test_kernels.py", "tests/test_layouts.py", "tests/test_golden.py")
PTB = ("tests/test_tf_ptb.py", "tests/test_tf_ptb_cli.py", "tests/test_tf1.py", "tests/test_golden.py")
SHAKESPEARE = ("tests/test_tf_shakespeare.py", "tests/test_tf_shakespeare_cli.py", "tests/test_seq2seq.py",
               "tests/test_tf1.py", "tests/test_golden.py")
IMDB = ("tests/test_theano_imdb.py", "tests/test_theano_imdb_cli.py", "tests/test_golden.py")
CAFFE = ("tests/test_caffe_layers.py", "tests/test_caffe_example.py", "tests/test_caffe_files.py",
         "tests/test_golden_caffe.py")


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    tests: Tuple[str, ...]
    what: str


MUTANTS: List[Mutant] = [
    # ------------------------------------------------------------------------------------- the core
    Mutant("core-gate-order", "compat/recurrent/loop.py", "            i, f, g, o = gates.chunk(4, dim=1)",
           "            i, g, f, o = gates.chunk(4, dim=1)", CORE, "step loop reads the f and g blocks swapped"),
    Mutant("core-cont-cell", "compat/recurrent/loop.py", "c_prev, h_prev = c * scale, h * scale",
           "c_prev, h_prev = c, h * scale", CORE + CAFFE[:1],
           "cont no longer resets the cell"),
    Mutant("core-cont-hidden", "compat/recurrent/loop.py", "    scaled = h * scale\n", "    scaled = h\n", CORE + CAFFE[:1],
           "cont no longer resets h in the recurrent product"),
    Mutant("core-fused-restart", "compat/recurrent/fused.py", "scale = cont[start].view(1, B, 1)",
           "scale = torch.ones_like(cont[start]).view(1, B, 1)", CORE + CAFFE[:1],
           "fused path ignores mid-sequence restarts"),
    Mutant("core-mask-cell-carry", "compat/recurrent/loop.py",
           "m = mask[t].unsqueeze(1)\n            c_new = m * c_new + (1 - m) * c_prev",
           "m = mask[t].unsqueeze(1)\n            c_new = m * c_new",
           CORE + IMDB[:1], "masked steps no longer carry the cell"),
    Mutant("core-mask-hidden-carry", "compat/recurrent/loop.py", "h_new = m * h_new + (1 - m) * h_prev",
           "h_new = m * h_new + (1 - m) * h_prev * 0",
           CORE + IMDB[:1], "masked steps no longer carry h"),
    Mutant("core-mask-h-unblended", "compat/recurrent/loop.py", "h_new = gate(o) * cell_output(c_new)",
           "h_new = gate(o) * cell_output(f * c_prev + i * cell_input(g))", CORE + IMDB[:1],
           "h from the unblended cell (lstm.py takes it from the blended one)"),
    Mutant("core-output-dropout-last-layer", "compat/recurrent/stack.py",
           'if p > 0 and (layer < L - 1 or call.dropout_placement == "output"):', "if p > 0 and layer < L - 1:",
           CORE + PTB[:1], "loop path: no dropout on the last layer's output"),
    Mutant("core-fused-output-dropout", "compat/recurrent/fused.py",
           "output = F.dropout(output, call.dropout, training=True)",
           "output = output", CORE + PTB[:1], "fused path: no dropout on the output"),
    Mutant("core-preact-clamp", "compat/recurrent/loop.py", "return grad.clamp(-ctx.threshold, ctx.threshold), None",
           "return grad, None", CORE + CAFFE, "clipping_threshold clamps nothing"),
    Mutant("core-dwh-raw-h", "compat/recurrent/loop.py", "raw = h.detach() @ weight_hh.t()",
           "raw = scaled.detach() @ weight_hh.t()", CORE + CAFFE, "the dW_h defect uses the cont-scaled h"),
    Mutant("layouts-tf-gate-order", "compat/frameworks/tf/layout.py",
           'w_ih = permute_gates(transpose(kernel[:n_in]), "ijfo", CANONICAL_ORDER)',
           'w_ih = permute_gates(transpose(kernel[:n_in]), "ifjo", CANONICAL_ORDER)', CORE + PTB[:1],
           "TF kernel's input rows read as i, f, j, o"),
    Mutant("layouts-forget-bias-block", "compat/layouts.py", "v[hidden:2 * hidden] = forget_bias",
           "v[2 * hidden:3 * hidden] = forget_bias", CORE + PTB[:1], "run-time forget bias added to the g gate"),
    Mutant("layouts-theano-gate-order", "compat/frameworks/theano/layout.py",
           'bc = permute_gates(b, "ifoc", CANONICAL_ORDER)',
           'bc = permute_gates(b, "ifco", CANONICAL_ORDER)', CORE + IMDB[:1], "Theano bias read as i, f, c, o"),
    Mutant("layouts-caffe-gate-order", "compat/frameworks/caffe/layout.py",
           'bc = permute_gates(b, "ifog", CANONICAL_ORDER)',
           'bc = permute_gates(b, "ifgo", CANONICAL_ORDER)', CORE + CAFFE[:1], "Caffe bias read as i, f, g, o"),
    # ---------------------------------------------------------------------------------------- tf_ptb
    Mutant("ptb-input-dropout", "ports/tf_ptb/model.py", "            x = F.dropout(x, drop, training=True)",
           "            pass", PTB, "no dropout on the embedding output"),
    Mutant("ptb-cost-per-token", "ports/tf_ptb/model.py",
           'reduction="sum") / batch_size', 'reduction="sum") / targets.numel()', PTB,
           "cost averaged per token instead of per sequence"),
    Mutant("ptb-dense-embedding-norm", "ports/tf_ptb/train.py",
           "indexed = {model.embedding: lookup.rows.grad.reshape(-1, lookup.rows.shape[-1])}", "indexed = None", PTB,
           "global norm over the dense embedding gradient, not TF's IndexedSlices"),
    Mutant("tf1-clip-formula", "compat/tf1.py", "scale = clip * torch.minimum(one / norm, one / clip)",
           "scale = torch.minimum(one / norm, one / clip)", PTB + SHAKESPEARE[:1], "clip scale loses clip_norm"),
    Mutant("ptb-lr-decay-epoch", "ports/tf_ptb/config.py",
           "self.lr_decay ** max(epoch + 1 - self.max_epoch, 0.0)", "self.lr_decay ** max(epoch - self.max_epoch, 0.0)",
           PTB, "learning-rate decay starts one epoch late"),
    Mutant("ptb-forget-bias-default", "ports/tf_ptb/config.py", "    forget_bias: float = 0.0",
           "    forget_bias: float = 1.0", PTB, "BasicLSTMCell's default forget bias instead of the tutorial's 0"),
    # -------------------------------------------------------------------------------- tf_shakespeare
    Mutant("adam-epsilon-placement", "compat/tf1.py",
           "den = torch._foreach_sqrt(vs)\n        torch._foreach_add_(den, eps)",
           "den = torch._foreach_add(vs, eps)\n        torch._foreach_sqrt_(den)", SHAKESPEARE, "epsilon inside the square root"),
    Mutant("adam-bias-correction", "compat/tf1.py",
           "lr_t = lr * torch.sqrt(1 - b2p) / (1 - b1p)\n        ms, vs",
           "lr_t = lr * torch.sqrt(1 - b2p) / (1 - b2p)\n        ms, vs", SHAKESPEARE, "bias correction with beta2 for beta1"),
    Mutant("adam-beta2-default", "compat/tf1.py", "beta2: float = 0.999", "beta2: float = 0.99", SHAKESPEARE,
           "Adam's beta2 constant"),
    Mutant("shakespeare-cost-per-sequence", "ports/tf_shakespeare/model.py", "return loss.sum() / (B * T), state",
           "return loss.sum() / B, state", SHAKESPEARE, "cost divided by batch only"),
    Mutant("shakespeare-prime-last-word", "ports/tf_shakespeare/sampling.py", "for word_id in prime_ids[:-1]:",
           "for word_id in prime_ids:", SHAKESPEARE, "the last prime word runs twice"),
    Mutant("shakespeare-clip-norm", "ports/tf_shakespeare/config.py", "clip_norm: float = 4.5",
           "clip_norm: float = 5.0", SHAKESPEARE, "the recipe's clip norm"),
    Mutant("seq2seq-loop-input", "compat/seq2seq.py", "            inp = loop_function(prev, i)",
           "            inp = inp", SHAKESPEARE, "rnn_decoder ignores its loop_function"),
    # ----------------------------------------------------------------------------------- theano_imdb
    Mutant("imdb-eval-dropout-scale", "ports/theano_imdb/model.py", "                proj = proj * 0.5",
           "                proj = proj", IMDB, "evaluation no longer scales by 0.5"),
    Mutant("imdb-cost-offset", "ports/theano_imdb/model.py", "torch.float16 else 1e-8", "torch.float16 else 0.0",
           IMDB, "no 1e-8 inside the log"),
    Mutant("imdb-mean-pool", "ports/theano_imdb/model.py",
           "(h * mask[:, :, None]).sum(dim=0) / mask.sum(dim=0)[:, None]", "(h * mask[:, :, None]).mean(dim=0)",
           IMDB, "pooling divides by all steps, not the unmasked ones"),
    Mutant("imdb-decay-c", "ports/theano_imdb/model.py", "cost = cost + decay_c * (self.U ** 2).sum()",
           "cost = cost + decay_c * (self.U ** 2).sum() / 2", IMDB, "weight decay halved"),
    Mutant("adadelta-rho", "ports/theano_imdb/optimizers.py",
           "def __init__(self, params, lr: float = 0.0, rho: float = 0.95, eps: float = 1e-6, foreach",
           "def __init__(self, params, lr: float = 0.0, rho: float = 0.9, eps: float = 1e-6, foreach", IMDB,
           "adadelta's rho"),
    Mutant("adadelta-epsilon", "ports/theano_imdb/optimizers.py",
           "den = torch._foreach_add(rg2, eps)\n        torch._foreach_sqrt_(den)",
           "den = torch._foreach_sqrt(rg2)\n        torch._foreach_add_(den, eps)", IMDB, "adadelta's epsilon outside the square root"),
    Mutant("imdb-early-stop-count", "ports/theano_imdb/train.py", "if bad_counter > patience:",
           "if bad_counter >= patience:", IMDB, "early stop one validation sooner"),
    Mutant("imdb-early-stop-best", "ports/theano_imdb/train.py",
           "valid_err <= np.array(history_errs)[:, 0].min()", "valid_err < np.array(history_errs)[:, 0].min()",
           IMDB, "a tie with the best no longer counts as the best"),
    Mutant("imdb-early-stop-window", "ports/theano_imdb/train.py", "np.array(history_errs)[:-patience, 0].min()",
           "np.array(history_errs)[:, 0].min()", IMDB, "bad validations compared with all, not all but the last"),
    # ---------------------------------------------------------------------------------------- caffe
    Mutant("caffe-euclidean-half", "ports/caffe_sequence/model.py", "/ a.shape[0] / 2.0", "/ a.shape[0]", CAFFE,
           "EuclideanLoss without its / 2"),
    Mutant("caffe-clip-reset", "ports/caffe_sequence/data.py", "clip[0] = float(k > 0)", "clip[0] = 1.0",
           CAFFE, "lstm_sequence.cpp's state reset at the first window dropped"),
    Mutant("checked-clamp-detector", "compat/recurrent/checked.py",
           "if clip is not None and bool((d_xproj.abs() > clip).any()):", "if False:",
           ("tests/test_kernels.py",) + CAFFE, "the checked fused kernel never recomputes where the clamp acts"),
    Mutant("caffe-forget-bias-value", "ports/caffe_sequence/config.py", "FORGET_BIAS = 5.0", "FORGET_BIAS = 1.0",
           CAFFE, "lstm_sequence.cpp's forget bias of 5"),
    Mutant("caffe-forget-bias-block", "ports/caffe_sequence/train.py", "m.b[H:2 * H] = value",
           "m.b[2 * H:3 * H] = value", CAFFE, "forget bias written into the o block"),
    Mutant("caffe-sgd-lr-mult", "ports/caffe_sequence/solver.py", "torch._foreach_add_(hists, diffs, alpha=rate * lr_mult)",
           "torch._foreach_add_(hists, diffs, alpha=rate)", CAFFE, "lr_mult ignored"),
    Mutant("caffe-sgd-decay-mult", "ports/caffe_sequence/solver.py",
           "local_decay = self.weight_decay * decay_mult\n            if local_decay:\n                reg",
           "local_decay = self.weight_decay\n            if local_decay:\n                reg", CAFFE, "decay_mult ignored"),
    Mutant("caffe-sgd-momentum", "ports/caffe_sequence/solver.py", "torch._foreach_mul_(hists, self.momentum)",
           "torch._foreach_mul_(hists, 0.9)",
           CAFFE, "momentum constant instead of the solver's"),
    Mutant("caffe-smoothed-loss", "ports/caffe_sequence/train.py",
           "smoothed += (loss - losses[idx]) / average_loss", "smoothed += (loss - losses[idx]) / (average_loss + 1)",
           CAFFE, "Solver::Step's running mean"),
    Mutant("caffe-clip-as-number", "ports/caffe_sequence/layers.py",
           "cont = ((clip if clip.shape == (T, N) else clip.reshape(T, N)) != 0).to(x.dtype)",
           "cont = (clip if clip.shape == (T, N) else clip.reshape(T, N)).to(x.dtype)", CAFFE,
           "the fork's clip used as a number, not a boolean"),
    Mutant("caffe-dwh-defect-default", "ports/caffe_sequence/config.py", "    dwh_defect: bool = True",
           "    dwh_defect: bool = False", CAFFE, "the example trains with the true dW_h"),
    Mutant("checked-dwh-defect", "compat/recurrent/checked.py",
           "d_xproj * (1 - cont).unsqueeze(2)", "d_xproj * 0 * (1 - cont).unsqueeze(2)",
           ("tests/test_kernels.py",) + CAFFE, "the checked fused kernel drops the dW_h defect's term"),
    # ------------------------------------------------------------------ fast paths and conversions
    Mutant("fastloop-grad-clamp-f", "compat/fastloop.py",
           "d_f = d_f > clip ? clip : (d_f < -clip ? -clip : d_f);", "d_f = d_f;", ("tests/test_fastloop.py",) + CAFFE,
           "compiled loop: the forget gate's gradient escapes the 0.1 clamp"),
    Mutant("fastloop-dwh-defect", "compat/fastloop.py",
           "REAL f = raw ? (REAL)1 : (cont ? cont[t * B + n] : (REAL)1);", "REAL f = cont ? cont[t * B + n] : (REAL)1;",
           ("tests/test_fastloop.py",) + CAFFE, "compiled loop: dW_h against the cont-scaled h despite the defect"),
    Mutant("fastloop-input-bias-grad", "compat/fastloop.py",
           "if (db) for (long j = 0; j < G; ++j) db[j] += d[j];", "if (db) for (long j = 0; j < G; ++j) db[j] -= d[j];",
           ("tests/test_fastloop.py",) + CAFFE, "compiled loop's own input term: the bias gradient's sign"),
    Mutant("ptb-tf-gate-order", "ports/tf_ptb/model.py", 'TF_GATE_ORDER = "igfo"', 'TF_GATE_ORDER = "ifgo"', PTB,
           "the TF kernel handed to the core with its j and f blocks swapped"),
    Mutant("tf1-clip-slices", "compat/tf1.py",
           "grads += [slices[id(p)] for p in params if p.grad is None and id(p) in slices]", "grads += []", PTB,
           "the embedding's IndexedSlices escape the global-norm clip"),
    Mutant("ptb-embedding-slices-lr", "ports/tf_ptb/train.py", "embedding.index_add_(0, ids, values * -lr)",
           "embedding.index_add_(0, ids, values * -lr * 0.5)", PTB, "the embedding's sparse update at half the rate"),
    Mutant("projected-xent-lse", "compat/projected_xent.py", "lse = z_max - p.amax(dim=1, keepdim=True).log_()",
           "lse = z_max", ("tests/test_projected_xent.py",) + PTB[:1], "the fused cross-entropy drops its log-sum-exp"),
    Mutant("projected-xent-onehot", "compat/projected_xent.py", "torch.full((g.shape[0], 1), -1.0,",
           "torch.full((g.shape[0], 1), -0.5,", ("tests/test_projected_xent.py",) + PTB[:1],
           "the fused cross-entropy's gradient subtracts half the one-hot"),
    Mutant("imdb-right-padded-check", "compat/recurrent/call.py",
           "return lengths if torch.equal(host, expected) else None",
           "return lengths", IMDB + CORE, "any mask taken for right padding (the unmasked fast path on left padding)"),
    Mutant("imdb-theano-gate-order", "ports/theano_imdb/model.py", 'THEANO_GATE_ORDER = "ifog"',
           'THEANO_GATE_ORDER = "ifgo"', IMDB, "the tutorial's W and U handed to the core with o and c swapped"),
    Mutant("variant-peephole-o", "compat/recurrent/loop.py", "o = o + p_o * c_new", "o = o + p_o * c_prev",
           ("tests/test_variants.py",), "output peephole on the old cell (TF LSTMCell uses the new one)"),
    # ------------------------------------------------------------------------------- the seam's kernels
    Mutant("kernel-legacy-order-as-canonical", "compat/recurrent/fused.py",
           "for j in cell.gate_index])", "for j in range(cell.gates)])",
           CORE + PTB[:1] + IMDB[:1], "torch's kernels read weights in a legacy gate order as canonical"),
    Mutant("kernel-unmasked-any-mask", "compat/recurrent/call.py",
           "return self.mask is not None and self.mask_lengths is not None",
           "return self.mask is not None", CORE + IMDB[:1],
           "a mask with holes run without it where the padding is unread"),
    Mutant("kernel-unread-both-ways", "compat/recurrent/call.py",
           'if self.past_end != "unread" or self.directions != 1:', 'if self.past_end != "unread":', CORE,
           "a bidirectional layer run dense over unread padding (its backward direction reads the padding first)"),
    Mutant("kernel-compiled-one-bias", "compat/recurrent/stack.py", "    if w.bias_hh is None:\n        return w.bias_ih",
           "    if True:\n        return w.bias_ih", CORE + PTB[:1], "the compiled loop drops the second bias"),
    Mutant("kernel-segments-threshold", "compat/recurrent/select.py",
           "return len(call.restarts) <= max(4, call.steps // 8)", "return True", CORE,
           "cont with restarts at every step runs in segments"),
    Mutant("kernel-first-drops-second-bias", "compat/recurrent/first.py", "                z.add_(bias_hh)",
           "                pass", CORE, "the first-step kernel drops bias_hh"),
    Mutant("kernel-first-cell-gradient", "compat/recurrent/first.py", "_tanh_backward(d_c * si, tg)",
           "_tanh_backward(d_c, tg)", CORE, "the first-step kernel's g gradient misses the input gate"),
    Mutant("kernel-first-given-state", "compat/recurrent/first.py", "        if not call.zero_state:",
           "        if False:", CORE, "a given initial state read as zeros by the first-step kernel"),
    Mutant("layouts-keras-gate-order", "compat/frameworks/keras/layout.py",
           'w_ih = permute_gates(transpose(p["kernel"]), KERAS_LSTM_ORDER, CANONICAL_ORDER)',
           'w_ih = permute_gates(transpose(p["kernel"]), "icfo", CANONICAL_ORDER)',
           ("tests/test_layouts.py", "tests/test_convert_golden.py"), "Keras kernel read as i, c, f, o"),
    Mutant("layouts-onnx-gate-order", "compat/frameworks/onnx/layout.py", 'w_ih = permute_gates(W[0], "iofc", CANONICAL_ORDER)',
           'w_ih = permute_gates(W[0], "ifoc", CANONICAL_ORDER)',
           ("tests/test_layouts.py", "tests/test_convert_golden.py"), "ONNX W read as i, f, o, c"),
    Mutant("imdb-cost-read-after-save", "ports/theano_imdb/train.py",
           "if show_due or save_due or valid_due or batch_no == len(kf) - 1 or costs.full:",
           "if show_due or valid_due or batch_no == len(kf) - 1 or costs.full:", IMDB,
           "the IMDB loop saves before it reads (and checks) the costs since the last read"),
    Mutant("imdb-bad-cost-last-update", "ports/theano_imdb/train.py", "return None, dict(update=first + n,",
           "return None, dict(update=first + len(values) - 1,", IMDB,
           "a bad cost reported at the read, not at the update that gave it"),
    Mutant("tf1-adam-powers-per-parameter", "compat/tf1.py", "                    self.state[p][name].mul_(beta)",
           "                    self.state[p][name].mul_(beta if p.grad is not None else 1.0)",
           ("tests/test_tf1.py",), "a TF Adam parameter's beta powers advance only with its own updates"),
    Mutant("token-ids-upper-bound", "compat/token_ids.py", "if low < 0 or high >= vocab_size:",
           "if low < 0 or high > vocab_size:", ("tests/test_token_ids.py",) + PTB[:1],
           "an id equal to the vocabulary's size let through"),
]


def tree_files(root: Path) -> List[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True,
                         check=True).stdout.decode()
    return [p for p in out.split("\0") if p and (root / p).is_file()]


def copy_tree(root: Path, dest: Path) -> None:
    for rel in tree_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)


def run_tests(copy: Path, tests: Sequence[str], timeout: float) -> Tuple[str, float, str]:
    """("passed" | "failed" | "timeout", seconds, the first failing test or the last output line)."""
    shutil.rmtree(copy / ".hypothesis", ignore_errors=True)
    env = dict(os.environ, HYPOTHESIS_PROFILE="ci", PYTHONPATH=str(copy), MPLBACKEND="Agg",
               PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    shared = REPO.parent / "shared" / "data"
    if "SHARED_DATA" not in env and shared.exists():
        env["SHARED_DATA"] = str(shared)
    env.pop("CI", None)
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(argv, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    seconds = time.perf_counter() - t0
    lines = res.stdout.strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    detail = failed[0] if failed else (lines[-1] if lines else res.stderr.strip()[-200:])
    return ("passed" if res.returncode == 0 else "failed"), seconds, detail


def apply(copy: Path, m: Mutant) -> Optional[str]:
    """The file's original text after writing the mutant into the copy, or None when it does not apply."""
    path = copy / m.file
    original = path.read_text()
    if original.count(m.find) != 1:
        return None
    path.write_text(original.replace(m.find, m.replace))
    return original


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="mutant ids to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and whether each applies")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per mutant's test run (then: killed)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = parser.parse_args(argv)
    ids = [m.id for m in MUTANTS]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate mutant ids")
    chosen = [m for m in MUTANTS if not args.only or m.id in args.only]
    unknown = set(args.only or ()) - set(ids)
    if unknown:
        raise SystemExit(f"unknown mutant ids {sorted(unknown)}")
    if args.list:
        for m in chosen:
            n = (REPO / m.file).read_text().count(m.find)
            print(f"{m.id:34} {m.file:34} {'applies' if n == 1 else f'DOES NOT APPLY ({n} matches)'}  {m.what}")
        return 0
    results: Dict[str, Tuple[str, float, str]] = {}
    with tempfile.TemporaryDirectory(prefix="mutants_") as tmp:
        copy = Path(tmp) / "tree"
        copy_tree(REPO, copy)
        if not args.no_baseline:
            files = sorted({t for m in chosen for t in m.tests})
            status, seconds, detail = run_tests(copy, files, args.timeout * 2)
            print(f"baseline ({len(files)} test files): {status} in {seconds:.0f} s {detail}", flush=True)
            if status != "passed":
                raise SystemExit("the unmutated tree must pass its tests first")
        for m in chosen:
            original = apply(copy, m)
            if original is None:
                results[m.id] = ("not applied", 0.0, f"{m.find!r} does not occur exactly once in {m.file}")
            else:
                try:
                    status, seconds, detail = run_tests(copy, m.tests, args.timeout)
                finally:
                    (copy / m.file).write_text(original)
                verdict = {"failed": "killed", "timeout": "killed (timeout)", "passed": "SURVIVED"}[status]
                results[m.id] = (verdict, seconds, detail)
            print(f"{m.id:34} {results[m.id][0]:16} {results[m.id][1]:6.0f} s  {results[m.id][2]}", flush=True)
    applied = [r for r in results.values() if r[0] != "not applied"]
    killed = [r for r in applied if r[0].startswith("killed")]
    print("\n| mutant | file | edit | result | caught by |\n| --- | --- | --- | --- | --- |")
    for m in chosen:
        verdict, _, detail = results[m.id]
        caught = detail.split(" - ")[0].replace("FAILED ", "") if verdict.startswith("killed") else ""
        print(f"| `{m.id}` | `{m.file}` | {m.what} | {verdict} | {caught} |")
    rate = 100.0 * len(killed) / len(applied) if applied else 0.0
    print(f"\nkilled {len(killed)} of {len(applied)} applied mutants ({rate:.0f}%); "
          f"{len(results) - len(applied)} not applied; survivors: "
          f"{', '.join(m.id for m in chosen if results[m.id][0] == 'SURVIVED') or 'none'}")
    return 0 if len(killed) == len(applied) else 1


if __name__ == "__main__":
    sys.exit(main())
