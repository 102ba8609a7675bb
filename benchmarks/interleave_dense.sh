#!/bin/bash
# Fresh-process fits of `python -m benchmarks dense --one`, two checkouts interleaved (rounds of
# every problem and C, then lbfgs), 1 core pinned under the benchmark lock; one RESULT line each.
# Usage: benchmarks/interleave_dense.sh OLD_CHECKOUT NEW_CHECKOUT [ROUNDS]   (results/denserff_defer_interleaved.log)
L="flock /work/bench.lock taskset -c 0 env NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"
OLD=$1; NEW=$2; ROUNDS=${3:-3}
for i in $(seq "$ROUNDS"); do
  for C in 1 100; do
    for p in a9a-rff1000 w8a-rff1000; do
      for w in "$OLD" "$NEW"; do
        cd "$w" || exit 1
        echo "$i $(basename "$w") $p C=$C $(PYTHONPATH=$PWD $L python -m benchmarks dense --one --problem $p --C $C --solver sn:auto --tol 1e-6 2>&1 | grep RESULT)"
      done
    done
  done
  for p in a9a-rff1000 w8a-rff1000; do
    cd "$NEW" || exit 1
    echo "$i lbfgs $p C=1 $(PYTHONPATH=$PWD $L python -m benchmarks dense --one --problem $p --C 1 --solver lbfgs --tol 1e-8 2>&1 | grep RESULT)"
  done
done
