#!/usr/bin/env bash
# halfcheetah-medium-expert made here: FQL fine-tuned (its default alpha 10) and its offline-only control, 10k + 10k,
# 4 seeds, the same flags and seeds as the SSCP runs (hc-me.sh, hc-me-controls.sh) and the medium-replay FQL runs
cd /work/o2o-cpu3
export SSCP_COMMIT=$(git -C /work/main rev-parse --short HEAD)
PY=/work/main/.venv/bin/python
date > hc-me-fql-driver.log
name=halfcheetah-medium-expert-v5
mkdir -p runs/fql-append runs/fql-control
COMMON="--dataset $name --data-dir data --seeds 0 1 2 3 --eval-every 5000 --save-every 5000 --eval-episodes 10 --eval-workers 2 --no-progress --no-plot --log-every 1000 --agent.actor-hidden-dims 256 256 --agent.critic-hidden-dims 256 256 --agent.batch-size 256"
$PY -m sscp.cli train --agent fql $COMMON --steps 10000 --online-steps 10000 --utd 1 --online-buffer append \
  --env-steps-per-call 50 --online-overlap --run-dir runs/fql-append/$name > runs/fql-append/$name.log 2>&1
date >> hc-me-fql-driver.log
$PY -m sscp.cli train --agent fql $COMMON --steps 20000 --run-dir runs/fql-control/$name > runs/fql-control/$name.log 2>&1
date >> hc-me-fql-driver.log
