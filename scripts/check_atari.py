"""Does the Nature DQN preset reach an evaluation >= +18 on Pong within 2M environment steps?

    python scripts/check_atari.py [ALE/Pong-v5] [--seeds 0 1 2] [--steps 2000000] [--jobs 1]
                                  [any rawdqn train flag, e.g. --device gpu --preset dopamine]

Each seed is a fresh `rawdqn train --env ENV --seed S --steps N` process (the env's preset:
`nature` for ALE ids), ending with the preset's evaluation (10 episodes at ε 0.05); prints
one row per seed and exits 1 if fewer than --required seeds reach --threshold. Needs the
`atari` extra. A GPU run: no GPU was available where this was written, so its time is a
prediction: 500,000 updates of ~2.2 GFLOP at ~1 ms each plus 2M emulator steps, about an
hour per seed. On the 2-core CPU here one update is ~28 ms (bench/conv.py): ~4–5 h per seed.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_cartpole import main  # noqa: E402

if __name__ == "__main__":
    env_id = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "ALE/Pong-v5"
    sys.exit(main(env_id, steps=2_000_000, threshold=18.0, seeds=(0, 1, 2), required=2, doc=__doc__))
