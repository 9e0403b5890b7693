#!/usr/bin/env bash
# The GPU checks and benchmarks of one lent GPU session, as one script (device time is scarce).
# Run from the repository root on a CUDA machine whose python3 has torch + torch-geometric;
# missing wheels (pymoo and its needs) may sit in .whl/. Results go to $OUT (default gpu_out/).
set -u
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 WANDB_MODE=offline GENNAS_CACHE_DIR=/tmp/gennas-cache
# The NB201 table travels to a GPU machine as an ignored, carried copy (never committed).
[ -d .devshared/nb201 ] && export GENNAS_NB201_DIR=$PWD/.devshared/nb201
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; } > "$OUT/gpu.txt" 2>&1
# 1. Every CUDA-only test plus the suites whose models now default to CUDA (predictor, supernet, DARTS/GDAS).
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_train.py tests/test_supernet.py \
  tests/test_weightsharing.py tests/test_predictors.py -x 2>&1 | tail -25 > "$OUT/pytest_cuda.txt"
# 2. DARTS / GDAS CUDA smoke checks (AMP dtype, finite alpha on nb201 and dag6, resume on CUDA).
timeout 100 python3 experiments/check_weightsharing_cuda.py > "$OUT/weightsharing_cuda.txt" 2>&1
# 3. The supernet benchmark on CUDA + AMP: the main job's pipeline, 6 subnets standalone, default recipe.
timeout 180 python3 experiments/bench_supernet.py --parts fidelity,thresholds --device cuda --standalone 6 \
  --recipes default --tag digits_gpu --out "$OUT" --work /tmp/bench_supernet > "$OUT/bench_supernet.log" 2>&1
# 4. DARTS / GDAS search on CUDA (quick form: few epochs, nb201 only).
timeout 80 python3 experiments/bench_weightsharing.py --part search --spaces nb201 --quick --device cuda \
  --out "$OUT" --work /tmp/bench_ws > "$OUT/bench_weightsharing.log" 2>&1
tail -3 "$OUT"/*.txt "$OUT"/*.log
