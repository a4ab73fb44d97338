#!/bin/bash
# CPU-scale check of the BC agents on can-demos-v0 (same settings as the Lift 30k runs).
set -u
for agent in sscp_bc diffusion_bc flow_bc bc; do
  /work/venv-robo/bin/sscp train --agent $agent --dataset data/can-demos-v0.hdf5 --steps 30000 --eval-every 15000 \
    --eval-episodes 20 --seeds 0 1 --log-every 1000 --save-every 10000 --keep-checkpoints 3 \
    --agent.chunk-size 16 --agent.execute-steps 8 --agent.obs-history 2 --agent.hidden-dims 256 256 \
    --agent.batch-size 256 --no-progress --eval-workers 0 --run-dir runs/$agent-chunk16 > log-$agent.txt 2>&1
done
