#!/usr/bin/env bash
# The GPU check (at most 5 minutes on one GPU; CPU CI does not run it). From the project folder:
#
#     bash benchmarks/gpu_check.sh              # on a machine with a CUDA GPU
#     bash benchmarks/gpu_check.sh --cpu-smoke  # the same steps on CPU, a handful of steps, no fp16 and no NCCL
#
# 1. generates the demo data (python -m ofa_core demo-data) into a fresh $OFA_CACHE_DIR;
# 2. trains recipes/demo_caption.json for $STEPS steps (default 300) under torchrun --nproc-per-node 1, in bf16
#    and in fp16 (with its GradScaler), and reports samples/s, tokens/s, the loss and the loss scale of each;
# 3. joins an NCCL process group under torchrun and times an all-reduce (a one-GPU trainer runs without one);
# 4. generates captions of the validation photos with the bf16-trained model in fp32 and in bf16, and reports
#    how often the best beams agree and images/s.
# Any failing step stops the check with a non-zero status. $OFA_GPU_CHECK_DIR keeps the files (the demo data,
# the runs, each run's summary JSON and log; default: a temporary folder, removed at the end). The CPU smoke takes
# about 80 s on a 2-core machine (bf16 is emulated there).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=gpu
case "${1:-}" in
    --cpu-smoke) mode=cpu ;;
    "") ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--cpu-smoke]" >&2; exit 2 ;;
esac

if [ "$mode" = gpu ]; then
    steps=${STEPS:-300}
    precisions=(bf16 fp16)
    demo_sizes=()
    run_settings=(--set data.num_workers=4 --set training.logging_steps=25)
    generate_settings=(--device cuda --images 60 --batch-size 16)
    if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "error: no CUDA GPU visible; on CPU run: bash benchmarks/gpu_check.sh --cpu-smoke" >&2
        exit 2
    fi
else
    steps=${STEPS:-4}
    precisions=(bf16)
    demo_sizes=(--train-images 16 --valid-images 4)
    run_settings=(--set training.logging_steps=1 --set training.per_device_train_batch_size=4)
    generate_settings=(--device cpu --images 4 --batch-size 4)
fi

work=${OFA_GPU_CHECK_DIR:-}
if [ -z "$work" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
export OFA_CACHE_DIR="$work/cache"
started=$SECONDS

stage() { echo "== $1 ($((SECONDS - started)) s)"; }

stage "demo data"
if [ ! -f "$OFA_CACHE_DIR/demo/demo.json" ]; then
    python -m ofa_core demo-data "${demo_sizes[@]}" >/dev/null
fi

for precision in "${precisions[@]}"; do
    stage "train $precision, $steps steps, torchrun --nproc-per-node 1"
    rm -rf "$work/runs/$precision"
    torchrun --nproc-per-node 1 -m ofa_core run recipes/demo_caption.json \
        --set training.mixed_precision="$precision" --set training.max_steps="$steps" \
        --set training.warmup_steps=$((steps / 10)) --set training.eval_strategy=no \
        --set training.save_steps="$steps" --set training.save_total_limit=1 --set training.report_to=none \
        --set training.resume_from_checkpoint=null --set output_dir="$work/runs/$precision" "${run_settings[@]}" \
        >"$work/summary-$precision.json" 2>"$work/train-$precision.log" \
        || { tail -20 "$work/train-$precision.log" >&2; exit 1; }
    python benchmarks/gpu_train_report.py "$work/runs/$precision" "$precision"
done
if [ "$mode" = cpu ]; then
    echo "train fp16: skipped (its GradScaler needs CUDA)"
fi

if [ "$mode" = gpu ]; then
    stage "nccl, torchrun --nproc-per-node 1"
    torchrun --nproc-per-node 1 benchmarks/gpu_nccl.py 2>"$work/nccl.log" || { tail -20 "$work/nccl.log" >&2; exit 1; }
else
    echo "nccl: skipped (no GPU)"
fi

stage "generate fp32 and bf16 with the bf16-trained model"
python benchmarks/gpu_generate.py "$work/runs/bf16" "${generate_settings[@]}"

stage "done"
