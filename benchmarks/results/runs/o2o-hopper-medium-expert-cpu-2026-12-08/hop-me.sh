#!/usr/bin/env bash
# hopper-medium-expert made here (60k-step SAC run, 200k + 200k transitions), then SSCP's fine-tuning with the paper's
# settings (alpha2 0.75, the paper's D4RL value for hopper-medium-expert) and its offline-only control, and FQL's
# (default alpha 10) with its control: 10k offline + 10k online env steps against 20k offline updates, 4 seeds,
# the same flags as the halfcheetah-medium-expert screening (o2o-medium-expert-cpu-2026-12-07)
cd /work/o2o-cpu4
export SSCP_COMMIT=$(git -C /work/main rev-parse --short HEAD)
PY=/work/main/.venv/bin/python
date > hop-me-driver.log
$PY -m sscp.cli data make hopper-medium-expert-v5 --out data --train-steps 60000 \
  --transitions 200000 --eval-every 5000 --eval-episodes 5 --env-steps-per-call 50 --workers 2 > data.log 2>&1 || exit 1
date >> hop-me-driver.log
name=hopper-medium-expert-v5
COMMON="--dataset $name --data-dir data --seeds 0 1 2 3 --eval-every 5000 --save-every 5000 --eval-episodes 10 --eval-workers 2 --no-progress --no-plot --log-every 1000 --agent.actor-hidden-dims 256 256 --agent.critic-hidden-dims 256 256 --agent.batch-size 256"
ONLINE="--steps 10000 --online-steps 10000 --utd 1 --online-buffer append --env-steps-per-call 50 --online-overlap"
mkdir -p runs/sscp-append runs/sscp-control runs/fql-append runs/fql-control
$PY -m sscp.cli train --agent sscp $COMMON --agent.alpha-completion 0.75 $ONLINE \
  --run-dir runs/sscp-append/$name > runs/sscp-append/$name.log 2>&1
date >> hop-me-driver.log
$PY -m sscp.cli train --agent sscp $COMMON --agent.alpha-completion 0.75 --steps 20000 \
  --run-dir runs/sscp-control/$name > runs/sscp-control/$name.log 2>&1
date >> hop-me-driver.log
$PY -m sscp.cli train --agent fql $COMMON $ONLINE --run-dir runs/fql-append/$name > runs/fql-append/$name.log 2>&1
date >> hop-me-driver.log
$PY -m sscp.cli train --agent fql $COMMON --steps 20000 --run-dir runs/fql-control/$name > runs/fql-control/$name.log 2>&1
date >> hop-me-driver.log
