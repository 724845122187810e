#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run of about six minutes (CI has none):
#   bash benchmarks/gpu_check.sh [OUT_DIR]      (default: gpu-check/)
# 1. the machine (GPU, driver, torch, CUDA, cuDNN);  2. the tests that run only on CUDA (`-k cuda`, in
# parallel, Hypothesis's "no-shrink" profile: a failure is reported as found, each test stopped after
# 60 s);  3. benchmarks/bench_core.py --device cuda (the LSTM alone, then the whole PTB step, then the
# PTB port's training and test-pass evaluation steps eager and captured in one CUDA graph) and benchmarks/gru_speed.py --device cuda (the GRU beside torch.nn.GRU);  4. the main
# job on CUDA for 3 epochs;  5. the whole suite on that machine's torch. Logs go to OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE=no-shrink MPLBACKEND=Agg PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$py" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA', torch.version.cuda, '| cuDNN', torch.backends.cudnn.version(), '|', torch.cuda.get_device_name())"
} 2>&1 | tee "$out/machine.txt"
timeout 120 "$py" -m pytest -q -p no:cacheprovider -n 8 -p timeout --timeout 60 -rfEs --durations 10 -k cuda tests 2>&1 \
  | grep -v PytestBenchmarkWarning | tee "$out/cuda_tests.txt"
timeout 90 "$py" benchmarks/bench_core.py --device cuda --repeats 10 2>&1 | tee "$out/bench_core_cuda.txt"
timeout 40 "$py" benchmarks/bench_core.py --device cuda --repeats 10 --full-model --cases ptb-small,ptb-medium 2>&1 \
  | tee "$out/bench_core_cuda_full_model.txt"
timeout 60 "$py" benchmarks/bench_core.py --device cuda --repeats 20 --cases ptb-train-step,ptb-eval-step 2>&1 \
  | tee "$out/bench_core_cuda_train_step.txt"
timeout 60 "$py" benchmarks/gru_speed.py --device cuda --repeats 20 2>&1 | tee "$out/gru_speed_cuda.txt"
timeout 35 "$py" -m ports.theano_imdb --device cuda --max_epochs 3 --out "$out/theano_imdb_cuda" --no-plot 2>&1 \
  | tail -n 12 | tee "$out/theano_imdb_cuda.txt"
rm -rf "$out/theano_imdb_cuda"
timeout 80 "$py" -m pytest -q -p no:cacheprovider -n 16 -p timeout --timeout 60 -rf tests 2>&1 \
  | grep -v PytestBenchmarkWarning | tail -n 40 | tee "$out/all_tests.txt"
