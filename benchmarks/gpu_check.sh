#!/usr/bin/env bash
# The GPU checks of issue 7 in one command, for a machine with CUDA that cannot reach PyPI (the device
# tool's H200: Python 3.12 with torch, numpy, scipy, typer, rich, safetensors and pytest, but no soundfile).
#
#   bash benchmarks/gpu_check.sh fetch        # here, with PyPI: the missing wheels into .whl/ (git-ignored)
#   bash benchmarks/gpu_check.sh run [OUT]    # there, from the repository root (carry .whl): installs them
#                                             # into /tmp/site, then the CUDA tests and the speed tables
#
# `run` writes its log to OUT (default: gpu-check.log). It takes about 5 minutes of a warm GPU machine on
# top of its start: the 60-minute file is left out (its 1.3 GB stems are writing, not GPU work).
set -euo pipefail
cd "$(dirname "$0")/.."

# soundfile (and cffi under it) for audio I/O; openunmix, demucs and julius for the side-by-side.
WHEELS=(soundfile==0.14.0 cffi==2.0.0 pycparser==3.0 openunmix==1.3.0 demucs==4.1.0 julius==0.2.8)

case "${1:-}" in
fetch)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d .whl "${WHEELS[@]}"
    ls -l .whl
    ;;
run)
    log="${2:-gpu-check.log}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    {
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
        python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
        python3 -m pytest -q -p no:cacheprovider tests/test_separate.py -k "cuda or accelerator" -rs
        python3 benchmarks/separate_speed.py --device cuda --minutes 1 10 --compare --cli-classes
    } 2>&1 | tee "$log"
    ;;
*)
    echo "usage: bash benchmarks/gpu_check.sh fetch | run [LOG]" >&2
    exit 2
    ;;
esac
