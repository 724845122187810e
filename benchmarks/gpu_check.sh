#!/usr/bin/env bash
# The checks that need a CUDA GPU, in phases (CI has no GPU):
#   bash benchmarks/gpu_check.sh [OUT_DIR] [PHASES]    (defaults: gpu-check/, every phase in this order)
# PHASES, comma-separated; each line's timeout bounds it, the worst case of all phases about 12 minutes
# (where one command may run 10 minutes at most: `machine,cuda,bench` then `ports,suite`, two calls):
#   machine   the GPU, driver, torch, CUDA and cuDNN
#   cuda      the tests that run only on CUDA (`-k cuda`, in parallel, Hypothesis's "no-shrink" profile: a
#             failure is reported as found; each test stopped after 60 s)                         <= 120 s
#   bench     benchmarks/bench_core.py --device cuda: the LSTM, GRU and tanh RNN beside torch's modules,
#             the whole PTB step, the PTB port's training and test-pass steps eager and captured in one
#             CUDA graph; benchmarks/gru_speed.py (both GRUs beside torch.nn.GRU)                 <= 310 s
#   ports     each port's short run on CUDA: the main job (3 epochs), PTB small and Shakespeare
#             (captured steps), the Caffe generator, the sine regressor                           <= 120 s
#   suite     the whole test suite on that machine's torch, in parallel (needs pytest-xdist)       <= 150 s
# DATA_DIR (default ../shared/data, else .device/data: copy ptb/ and shakespeare/pg100.txt there where the GPU machine
# cannot read ../shared) holds the data of the PTB and Shakespeare runs. DEVICE=cpu runs every command of
# the chosen phases on the CPU at the smallest sizes (a check of the script's commands and flags before the
# GPU's time is spent; the cuda and suite phases then only collect the tests). PTB medium and large to the
# end of their schedule: benchmarks/gpu_ptb.sh. Logs go to OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
phases=",${2:-machine,cuda,bench,ports,suite},"
device="${DEVICE:-cuda}"
data="${DATA_DIR:-}"
if [ -z "$data" ]; then
  if [ -d ../shared/data ]; then data=../shared/data; else data=.device/data; fi
fi
for p in ${phases//,/ }; do
  case "$p" in machine|cuda|bench|ports|suite) ;; *) echo "error: unknown phase '$p'" >&2; exit 2 ;; esac
done
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE=no-shrink MPLBACKEND=Agg PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}
want() { [[ "$phases" == *",$1,"* ]]; }
if [ "$device" = cpu ]; then  # the commands at their smallest: each flag checked by its parser
  repeats=(--repeats 1 --warmup 0); cases=(--cases ptb-small,gru-imdb,caffe-stream); collect=(--collect-only)
  imdb_epochs=1; ptb=(--model test --max-steps 2); shakespeare=(--max-iterations 2 --epochs 1); caffe_iters=2
  sine_steps=2
else
  repeats=(--repeats 10); cases=(); collect=(); imdb_epochs=3; ptb=(--model small --max-max-epoch 1 --max-steps 500)
  shakespeare=(--max-iterations 300 --epochs 1); caffe_iters=500; sine_steps=3000
fi
# pytest-xdist and pytest-timeout where the machine has them (the device's Python may have neither)
parallel=(); "$py" -c "import xdist" 2>/dev/null && parallel=(-n 8)
per_test=(); "$py" -c "import pytest_timeout" 2>/dev/null && per_test=(-p timeout --timeout 60)

if want machine; then
  {
    [ "$device" = cuda ] && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$py" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA', torch.version.cuda, '| cuDNN', torch.backends.cudnn.version(), '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
  } 2>&1 | tee "$out/machine.txt"
fi
if want cuda; then
  timeout 120 "$py" -m pytest -q -p no:cacheprovider "${parallel[@]}" "${per_test[@]}" -rfEs --durations 10 -k cuda \
    "${collect[@]}" tests 2>&1 | grep -v PytestBenchmarkWarning | tail -n 60 | tee "$out/cuda_tests.txt"
fi
if want bench; then
  timeout 150 "$py" benchmarks/bench_core.py --device "$device" "${repeats[@]}" "${cases[@]}" 2>&1 \
    | tee "$out/bench_core.txt"
  timeout 40 "$py" benchmarks/bench_core.py --device "$device" "${repeats[@]}" --full-model --cases ptb-small,ptb-medium \
    2>&1 | tee "$out/bench_core_full_model.txt"
  timeout 60 "$py" benchmarks/bench_core.py --device "$device" "${repeats[@]}" --cases ptb-train-step,ptb-eval-step \
    2>&1 | tee "$out/bench_core_steps.txt"
  timeout 60 "$py" benchmarks/gru_speed.py --device "$device" --repeats "${repeats[1]}" 2>&1 | tee "$out/gru_speed.txt"
fi
if want ports; then
  runs="$out/port_runs"
  mkdir -p "$runs"
  {
    echo "## ports.theano_imdb (the main job), $imdb_epochs epochs"
    timeout 35 "$py" -m ports.theano_imdb --device "$device" --max_epochs "$imdb_epochs" --out "$runs/theano_imdb" \
      --no-plot 2>&1 | tail -n 8
    echo "## ports.tf_ptb ${ptb[*]}"
    timeout 30 "$py" -m ports.tf_ptb "${ptb[@]}" --data-path "$data/ptb" --device "$device" --cuda-graph auto \
      --no-progress --quiet --no-plot 2>&1 | tail -n 6
    echo "## ports.tf_shakespeare train ${shakespeare[*]}"
    timeout 25 "$py" -m ports.tf_shakespeare train --data-path "$data/shakespeare/pg100.txt" --save-dir "$runs/shakespeare" \
      "${shakespeare[@]}" --device "$device" --cuda-graph auto --no-progress --no-plot 2>&1 | tail -n 6
    echo "## ports.caffe_sequence --config lstm_short --iters $caffe_iters"
    timeout 15 "$py" -m ports.caffe_sequence --config lstm_short --iters "$caffe_iters" --device "$device" \
      --out "$runs/caffe_sequence" --no-plot --no-progress 2>&1 | tail -n 4
    echo "## ports.tf_sine --steps $sine_steps"
    timeout 15 "$py" -m ports.tf_sine --steps "$sine_steps" --device "$device" --model-dir "$runs/tf_sine" --no-plot \
      --no-progress 2>&1 | tail -n 4
  } | tee "$out/ports.txt"
  rm -rf "$runs"
fi
if want suite; then
  if [ ${#parallel[@]} -eq 0 ] && [ "$device" = cuda ]; then
    echo "suite: left out (no pytest-xdist here; the suite alone takes about 6 minutes on one core)" \
      | tee "$out/all_tests.txt"
  else
    timeout 150 "$py" -m pytest -q -p no:cacheprovider "${parallel[@]/8/16}" "${per_test[@]}" -rf "${collect[@]}" \
      tests 2>&1 | grep -v PytestBenchmarkWarning | tail -n 40 | tee "$out/all_tests.txt"
  fi
fi
