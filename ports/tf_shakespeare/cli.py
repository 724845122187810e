"""The command line of ``python -m ports.tf_shakespeare train|sample|report``: the recipe's training run, its
sampler, and a run's summary."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional

from compat import threads
from compat.checkpoint import manifest_path
from compat.cli import (ArgumentParser, Device, Float, InputDir, InputFile, InputPath, Int, OutputDir, OutputFile, Text,
                        check_device, fail, print_files, run_cli)
from compat.step_graph import add_cuda_graph_argument
from ports.tf_shakespeare.config import RECIPE_PRIME_TEXTS, TrainConfig
from ports.tf_shakespeare.train import CHECKPOINT_NAME, PLOT_NAME, VOCAB_NAME


def _add_common(p: argparse.ArgumentParser, seed_help: str) -> None:
    p.add_argument("--seed", type=Int(minimum=0), default=0, help=seed_help)
    p.add_argument("--device", type=Device(), default="cpu", help="torch device: cpu or cuda[:N]")
    threads.add_threads_argument(p)


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    parser = ArgumentParser(prog="python -m ports.tf_shakespeare",
                            description="The TF cookbook's Shakespeare word LSTM (rnn_decoder sampler).")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train as the recipe (10 epochs of 100x50 batches, Adam 0.001, clip 4.5)",
                       )
    t.add_argument("--data-path", required=True, type=InputFile(),
                   help="plain-text corpus, e.g. pg100.txt (UTF-8, CRLF kept)")
    t.add_argument("--save-dir", default="runs/tf_shakespeare", type=OutputDir(),
                   help="folder for model.json (+ its .safetensors), vocab.json, loss.png")
    t.add_argument("--resume", action="store_true", help="continue from SAVE_DIR/model.json when it exists")
    t.add_argument("--epochs", type=Int(minimum=1), default=d.epochs, help="epochs to train (recipe: 10)")
    t.add_argument("--max-iterations", type=Int(minimum=1), default=None,
                   help="stop after this many iterations in this run, checkpointing (smoke runs)")
    t.add_argument("--rnn-size", type=Int(minimum=1), default=d.rnn_size, help="LSTM and embedding size (recipe: 128)")
    t.add_argument("--batch-size", type=Int(minimum=1), default=d.batch_size, help="batch size (recipe: 100)")
    t.add_argument("--seq-len", type=Int(minimum=1), default=d.training_seq_len, help="words per sequence (recipe: 50)")
    t.add_argument("--learning-rate", type=Float(minimum=0), default=d.learning_rate,
                   help="TF Adam learning rate (recipe: 0.001)")
    t.add_argument("--clip-norm", type=Float(minimum=0, above=True), default=d.clip_norm,
                   help="clip_by_global_norm threshold (recipe: 4.5)")
    t.add_argument("--min-word-freq", type=Int(minimum=0), default=d.min_word_freq,
                   help="keep words seen more than this many times (recipe: 5)")
    t.add_argument("--skip-chars", type=Int(minimum=0), default=d.skip_chars,
                   help="characters dropped from the start of the file (recipe: 7675, pg100.txt's header)")
    t.add_argument("--save-every", type=Int(minimum=1), default=d.save_every,
                   help="checkpoint every N iterations (recipe: 500)")
    t.add_argument("--eval-every", type=Int(minimum=1), default=d.eval_every,
                   help="print the prime texts' greedy samples every N iterations (recipe: 50)")
    t.add_argument("--print-every", type=Int(minimum=1), default=d.print_every,
                   help="print the loss every N iterations (recipe: 10)")
    t.add_argument("--prime", action="append", default=None, type=Text(),
                   help=f"prime text for the periodic samples (repeatable; recipe: {list(RECIPE_PRIME_TEXTS)})")
    t.add_argument("--dtype", choices=["float32", "float64"], default=d.dtype, help="parameter dtype (TF: float32)")
    t.add_argument("--recipe-batch-count", action="store_true",
                   help="print 'Batch: b out of num_batches + 1' exactly as the recipe's log line does")
    add_cuda_graph_argument(t)
    t.add_argument("--no-progress", action="store_true", help="do not show the progress line")
    t.add_argument("--no-plot", action="store_true", help="do not write loss.png")
    _add_common(t, "seed of the initialisation, the batch shuffles and the periodic samples")

    s = sub.add_parser("sample", help="continue prime texts with a saved model")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=InputPath(), help="model.json written by train (or its folder, with vocab.json)")
    src.add_argument("--tf-checkpoint", type=InputPath(suffixes=(".index",)),
                     help="a TF1 checkpoint of the recipe (prefix or folder); needs --vocab")
    s.add_argument("--vocab", default=None, type=InputFile(),
                   help="vocabulary for --tf-checkpoint: the recipe's vocab.pkl (read safely) or a vocab.json")
    s.add_argument("--prime", action="append", required=True, type=Text(), help="prime text (repeatable)")
    s.add_argument("--num", type=Int(minimum=1), default=10, help="words to generate at most (recipe: 10)")
    s.add_argument("--temperature", type=Float(minimum=0, above=True), default=None,
                   help="sample from softmax(logits / T) instead of the recipe's argmax")
    s.add_argument("--top-k", type=Int(minimum=1), default=None, help="sample among the K most likely words only")
    s.add_argument("--unknown", choices=["error", "zero"], default="error",
                   help="prime words outside the vocabulary: error (the recipe's KeyError) or map to id 0")
    _add_common(s, "seed of the sampling (--temperature, --top-k); the recipe's argmax draws nothing")

    r = sub.add_parser("report", help="summarise a run: loss landmarks, epoch times, greedy samples, loss plot",
                       )
    r.add_argument("--save-dir", required=True, type=InputDir(), help="the run's folder (model.json and vocab.json)")
    r.add_argument("--plot", default=None, type=OutputFile(),
                   help="write the loss curve with the recipe's published levels here (PNG)")
    _add_common(r, "unused by the report (greedy samples draw nothing)")
    return parser


def main(argv: Optional[List[str]] = None, *, owns_process: bool = False) -> int:
    """The program; ``owns_process``: run as ``python -m`` (it may then choose the thread count)."""
    return run_cli(lambda a: _main(a, owns_process), argv, build_parser)


def _main(args: argparse.Namespace, owns_process: bool = False) -> int:
    n_threads = threads.configure_threads(args.threads, owns_process=owns_process)
    if args.command == "train":
        from ports.tf_shakespeare.data import DataError
        from ports.tf_shakespeare.train import CheckpointError, train

        config = TrainConfig(min_word_freq=args.min_word_freq, rnn_size=args.rnn_size, epochs=args.epochs,
                             batch_size=args.batch_size, learning_rate=args.learning_rate,
                             training_seq_len=args.seq_len, save_every=args.save_every,
                             eval_every=args.eval_every,
                             prime_texts=list(args.prime) if args.prime else list(RECIPE_PRIME_TEXTS),
                             clip_norm=args.clip_norm, skip_chars=args.skip_chars, seed=args.seed,
                             dtype=args.dtype, print_every=args.print_every,
                             recipe_batch_count=args.recipe_batch_count)
        device = check_device(args.device)
        print(f"ports.tf_shakespeare train: the TF cookbook's Shakespeare word LSTM on {args.data_path} "
              f"({config.epochs} epochs of {config.batch_size}x{config.training_seq_len} batches), {device}, "
              f"{n_threads}; files go to {args.save_dir}/", flush=True)
        try:
            summary = train(args.data_path, args.save_dir, config, resume=args.resume,
                            max_iterations=args.max_iterations, device=device,
                            progress=not args.no_progress, plot=not args.no_plot,
                            log=lambda line: print(line, flush=True), on_step=n_threads.check,
                            cuda_graph=args.cuda_graph)
        except (DataError, CheckpointError) as e:
            fail(str(e))
        print(f"Trained {summary['iterations']} iterations; vocabulary {summary['vocab_size']}, "
              f"{summary['num_batches']} batches per epoch", flush=True)
        save_dir = Path(args.save_dir)
        print_files([(manifest_path(save_dir / CHECKPOINT_NAME), "checkpoint (with the .safetensors file beside it): "
                                                                 "model, optimizer, position; sample --model and "
                                                                 "train --resume read it"),
                     (save_dir / VOCAB_NAME, "the vocabulary (JSON)"),
                     (save_dir / PLOT_NAME if not args.no_plot else None, "loss per iteration (PNG)")])
        return 0

    import torch

    from ports.tf_shakespeare.data import DataError

    if args.command == "report":
        from ports.tf_shakespeare.train import CheckpointError, report

        try:
            report(args.save_dir, args.plot, check_device(args.device), log=lambda line: print(line, flush=True))
        except (CheckpointError, DataError) as e:
            fail(str(e))
        return 0

    from ports.tf_shakespeare.data import UnknownWordError
    from ports.tf_shakespeare.train import CheckpointError, load_tf1_model, load_trained

    try:
        if args.model:
            model, ix2vocab, vocab2ix, _ = load_trained(args.model, check_device(args.device))
        else:
            model, ix2vocab, vocab2ix = load_tf1_model(args.tf_checkpoint, args.vocab, check_device(args.device))
    except (CheckpointError, DataError, KeyError) as e:
        fail(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e))
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    for prime in args.prime:
        try:
            print(model.sample(prime, ix2vocab, vocab2ix, num=args.num, temperature=args.temperature,
                               top_k=args.top_k, generator=generator, unknown=args.unknown), flush=True)
        except UnknownWordError as e:
            fail(f"--prime {prime!r}: the word {e.word!r} is not in the vocabulary ({e.vocab_size} words); "
                 "--unknown zero maps it to id 0")
        except (KeyError, ValueError) as e:
            fail(f"--prime {prime!r}: {e.args[0] if e.args else e}")
    return 0
