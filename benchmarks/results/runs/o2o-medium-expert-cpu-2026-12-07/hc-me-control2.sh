#!/usr/bin/env bash
# halfcheetah-medium-expert made here: the offline-only control again (20k updates, as hc-me.sh's), run in the same
# session as hc-me-controls.sh, so that the paper's fine-tuning has a control that shares its offline phase
cd /work/o2o-cpu3
export SSCP_COMMIT=$(git -C /work/main rev-parse --short HEAD)
PY=/work/main/.venv/bin/python
date > hc-me-control2-driver.log
name=halfcheetah-medium-expert-v5
mkdir -p runs/sscp-control-rerun
COMMON="--dataset $name --data-dir data --seeds 0 1 2 3 --eval-every 5000 --save-every 5000 --eval-episodes 10 --eval-workers 2 --no-progress --no-plot --log-every 1000 --agent.actor-hidden-dims 256 256 --agent.critic-hidden-dims 256 256 --agent.batch-size 256"
$PY -m sscp.cli train --agent sscp $COMMON --agent.alpha-completion 0.1 --steps 20000 --run-dir runs/sscp-control-rerun/$name > runs/sscp-control-rerun/$name.log 2>&1
date >> hc-me-control2-driver.log
