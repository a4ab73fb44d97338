#!/usr/bin/env bash
# halfcheetah-medium-expert made here: the two rows the first screening lacked (o2o-medium-expert-cpu-2026-12-07):
# the control with the online preset's option change from update 10k on and no online data (--online-agent-at), and
# the paper's fine-tuning (no option change), 10k + 10k, 4 seeds, the same flags and seeds as hc-me.sh
cd /work/o2o-cpu3
export SSCP_COMMIT=$(git -C /work/main rev-parse --short HEAD)
PY=/work/main/.venv/bin/python
date > hc-me-controls-driver.log
name=halfcheetah-medium-expert-v5
mkdir -p runs/sscp-control-td3 runs/sscp-append
COMMON="--dataset $name --data-dir data --seeds 0 1 2 3 --eval-every 5000 --save-every 5000 --eval-episodes 10 --eval-workers 2 --no-progress --no-plot --log-every 1000 --agent.actor-hidden-dims 256 256 --agent.critic-hidden-dims 256 256 --agent.batch-size 256"
$PY -m sscp.cli train --agent sscp $COMMON --agent.alpha-completion 0.1 --steps 20000 \
  --online-agent normalize_q_loss=False explore_actor=online exploration_noise=0.1 policy_noise=0.2 --online-agent-at 10000 \
  --run-dir runs/sscp-control-td3/$name > runs/sscp-control-td3/$name.log 2>&1
date >> hc-me-controls-driver.log
$PY -m sscp.cli train --agent sscp $COMMON --agent.alpha-completion 0.1 --steps 10000 --online-steps 10000 --utd 1 --online-buffer append \
  --env-steps-per-call 50 --online-overlap --run-dir runs/sscp-append/$name > runs/sscp-append/$name.log 2>&1
date >> hc-me-controls-driver.log
