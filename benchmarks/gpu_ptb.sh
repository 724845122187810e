#!/usr/bin/env bash
# ptb_word_lm.py's medium (or large) model trained on a CUDA GPU to the end of its schedule, in as many
# calls as the machine's time allows: each call resumes from the checkpoint the last one wrote.
#   bash benchmarks/gpu_ptb.sh DATA_DIR [medium|large] [RUN_DIR] [SECONDS]
# DATA_DIR holds ptb.train.txt, ptb.valid.txt and ptb.test.txt. RUN_DIR (default runs/gpu-ptb-MODEL) keeps the
# checkpoint (written atomically after every epoch: a call stopped mid-epoch loses that epoch only), the
# metrics JSON, the perplexity plot and the log; SECONDS (default 540) bounds this call, after which the run
# stops and the next call goes on from the last finished epoch. The training and evaluation steps are each
# one CUDA graph (--cuda-graph auto).
# The figures go into docs/results.md (PTB); the epoch times in the metrics JSON give the projected time of
# an unfinished run. DEVICE (default cuda) and PTB_ARGS (more flags) serve a smoke run of the script's paths
# on the CPU: DEVICE=cpu PTB_ARGS="--max-max-epoch 2 --max-steps 2" bash benchmarks/gpu_ptb.sh DATA_DIR medium RUN 60
set -uo pipefail
cd "$(dirname "$0")/.."
data="${1:?usage: bash benchmarks/gpu_ptb.sh DATA_DIR [medium|large] [RUN_DIR] [SECONDS]}"
model="${2:-medium}"
run="${3:-runs/gpu-ptb-$model}"
seconds="${4:-540}"
case "$model" in medium|large) ;; *) echo "error: MODEL must be medium or large, not '$model'" >&2; exit 2 ;; esac
mkdir -p "$run"
name="$run/ptb_$model"
resume=()
[ -f "$name.json" ] && resume=(--resume "$name")
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
py=${PYTHON:-python3}
# shellcheck disable=SC2086  # PTB_ARGS: flags, split at spaces
timeout "$seconds" "$py" -m ports.tf_ptb --model "$model" --data-path "$data" --device "${DEVICE:-cuda}" \
  --cuda-graph auto --save "$name" "${resume[@]}" --no-progress ${PTB_ARGS:-} 2>&1 | tee -a "$run/ptb_$model.log"
status=${PIPESTATUS[0]}
"$py" - "$name.metrics.json" <<'EOF'
import json, sys
try:
    m = json.load(open(sys.argv[1]))
except OSError:
    sys.exit("no metrics yet (no epoch finished)")
seconds = m.get("epoch_seconds") or []
done, total = len(m.get("epochs") or []), m.get("config", {}).get("max_max_epoch")
line = f"{done} epochs done"
if seconds:
    line += f", {sum(seconds) / len(seconds):.1f} s per epoch (training)"
    if total and done < total:
        line += f"; {total - done} to go, about {(total - done) * sum(seconds) / len(seconds) / 60:.1f} min"
test = m.get("test_perplexity")
print(line + (f"; test perplexity {test:.2f}" if test is not None else ""))
EOF
exit "$status"
