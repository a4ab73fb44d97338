#!/bin/bash
# CPU-scale check of the BC agents on square-demos-v0 (the Can runs' settings, 100k updates, evaluations at 50k and 100k).
set -u
/work/venv-robo/bin/sscp data make square-demos-v0 --out data --workers 2 > make-square.log 2>&1
for agent in sscp_bc diffusion_bc flow_bc bc; do
  /work/venv-robo/bin/sscp train --agent $agent --dataset data/square-demos-v0.hdf5 --steps 100000 --eval-every 50000 \
    --eval-episodes 20 --seeds 0 1 --log-every 1000 --save-every 10000 --keep-checkpoints 3 \
    --agent.chunk-size 16 --agent.execute-steps 8 --agent.obs-history 2 --agent.hidden-dims 256 256 \
    --agent.batch-size 256 --no-progress --eval-workers 0 --run-dir sq/$agent-chunk16 > logsq-$agent.txt 2>&1
  if [ $agent = sscp_bc ]; then
    /work/venv-robo/bin/sscp eval sq/sscp_bc-chunk16 --episodes 20 --sample-steps 5 --workers 0 > eval-k5-square.log 2>&1
  fi
done
