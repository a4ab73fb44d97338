#!/usr/bin/env bash
# the three medium-replay datasets: SSCP fine-tuned with the paper's settings in the online phase (no --online-agent),
# beside the --online-agent fine-tuning and the offline-only control (same seeds, sizes, budget and evaluation)
cd /work/o2o-cpu2
export SSCP_COMMIT=$(git -C /work/main rev-parse --short HEAD)
date > mr-paper-driver.log
mkdir -p runs/sscp-append
for pair in halfcheetah:0.05 hopper:0.10 walker2d:0.10; do
  name=${pair%%:*}-medium-replay-v5; alpha=${pair##*:}
  COMMON="--dataset $name --data-dir data --seeds 0 1 2 3 --eval-every 5000 --save-every 5000 --eval-episodes 10 --eval-workers 2 --no-progress --no-plot --log-every 1000 --agent.actor-hidden-dims 256 256 --agent.critic-hidden-dims 256 256 --agent.batch-size 256"
  /work/main/.venv/bin/python -m sscp.cli train --agent sscp $COMMON --agent.alpha-completion $alpha --steps 10000 --online-steps 10000 --utd 1 \
    --online-buffer append --env-steps-per-call 50 --online-overlap --run-dir runs/sscp-append/$name > runs/sscp-append/$name.log 2>&1
  date >> mr-paper-driver.log
done
