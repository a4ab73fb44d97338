#!/bin/bash
# The Can runs continued from their 30k checkpoints to 100k (evaluations at 50k and 100k).
set -u
for agent in sscp_bc diffusion_bc flow_bc bc; do
  /work/venv-robo/bin/sscp train --agent $agent --dataset data/can-demos-v0.hdf5 --steps 100000 --eval-every 50000 \
    --eval-episodes 20 --seeds 0 1 --log-every 1000 --save-every 10000 --keep-checkpoints 3 \
    --agent.chunk-size 16 --agent.execute-steps 8 --agent.obs-history 2 --agent.hidden-dims 256 256 \
    --agent.batch-size 256 --no-progress --eval-workers 0 --run-dir runs/$agent-chunk16 > log100k-$agent.txt 2>&1
done
/work/venv-robo/bin/sscp eval runs/sscp_bc-chunk16 --episodes 20 --sample-steps 5 --workers 0 > eval-k5-100k.log 2>&1
