#!/usr/bin/env bash
# hopper-medium-expert made here: fine-tuning with the online preset's losses and noise for the online phase
# (--online-agent) and its control with the same option change at 10k and no online data (--online-agent-at 10000),
# the flags of hop-me.sh; run after it (waits for it to end)
cd /work/o2o-cpu4
while pgrep -f hop-me.sh > /dev/null; do sleep 30; done
export SSCP_COMMIT=$(git -C /work/main rev-parse --short HEAD)
PY=/work/main/.venv/bin/python
date > hop-me-oa-driver.log
name=hopper-medium-expert-v5
COMMON="--dataset $name --data-dir data --seeds 0 1 2 3 --eval-every 5000 --save-every 5000 --eval-episodes 10 --eval-workers 2 --no-progress --no-plot --log-every 1000 --agent.actor-hidden-dims 256 256 --agent.critic-hidden-dims 256 256 --agent.batch-size 256"
OA="normalize_q_loss=False explore_actor=online exploration_noise=0.1 policy_noise=0.2"
mkdir -p runs/sscp-append-td3 runs/sscp-control-td3
$PY -m sscp.cli train --agent sscp $COMMON --agent.alpha-completion 0.75 --steps 10000 --online-steps 10000 --utd 1 \
  --online-buffer append --env-steps-per-call 50 --online-overlap --online-agent $OA \
  --run-dir runs/sscp-append-td3/$name > runs/sscp-append-td3/$name.log 2>&1
date >> hop-me-oa-driver.log
$PY -m sscp.cli train --agent sscp $COMMON --agent.alpha-completion 0.75 --steps 20000 --online-agent $OA \
  --online-agent-at 10000 --run-dir runs/sscp-control-td3/$name > runs/sscp-control-td3/$name.log 2>&1
date >> hop-me-oa-driver.log
