#!/bin/bash
# Square: flow BC resumed from its 40k checkpoint and Gaussian BC from scratch, to 100k (the other agents' settings).
set -u
for agent in flow_bc bc; do
  /work/venv-robo/bin/sscp train --agent $agent --dataset data/square-demos-v0.hdf5 --steps 100000 --eval-every 50000 \
    --eval-episodes 20 --seeds 0 1 --log-every 1000 --save-every 10000 --keep-checkpoints 3 \
    --agent.chunk-size 16 --agent.execute-steps 8 --agent.obs-history 2 --agent.hidden-dims 256 256 \
    --agent.batch-size 256 --no-progress --eval-workers 0 --run-dir sq/$agent-chunk16 >> logsq-$agent.txt 2>&1
done
