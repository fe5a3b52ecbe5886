"""Does GRPO raise its training reward on the embedded tiny model? Chapter 06b's tiny setup (a clinical SFT adapter
trained for 60 steps, then 200 GRPO steps with `rl_config`'s tiny defaults), repeated with several GRPO seeds.

    python bench/rl_seeds.py                 # seeds 0 1 2 3, about 80 s each on a 2-core CPU
    python bench/rl_seeds.py --seeds 0 5

Prints one row per seed: the mean task reward of the training answers in the first and last quarter of the steps,
their difference, and the final KL to the SFT policy. The spread across seeds is what one run's change must be read
against.
"""
import argparse, sys, tempfile, time, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table
from medgemma_lora.rl import rl_config, rl_run
from medgemma_lora.sources import make_dataset
from medgemma_lora.train import TINY_TRAINING, TrainConfig, train


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3], help='GRPO seeds (default: 0 1 2 3)')
    a = ap.parse_args(argv)
    warnings.filterwarnings('ignore')
    work = Path(tempfile.mkdtemp())
    make_dataset('clinical', work/'data', n_train=200, n_eval=40, seed=0, verbose=False)
    train(TrainConfig.preset_config('clinical', data=str(work/'data'), out=str(work/'sft'), **{**TINY_TRAINING, 'max_steps': 60}), progress=False)
    rows = []
    for seed in a.seeds:
        t0 = time.time()
        t = rl_run(rl_config(data=str(work/'data'), adapter=str(work/'sft'), out=str(work/f'rl{seed}'), seed=seed), progress=False)['train']
        first, last = t['task_reward_first_quarter'], t['task_reward_last_quarter']
        rows.append({'GRPO seed': seed, 'task reward, first quarter': f'{first:.3f}', 'last quarter': f'{last:.3f}',
                     'change': f'{last - first:+.3f}', 'KL at the end': f"{t['kl_last']:.3f}", 'seconds': f'{time.time() - t0:.0f}'})
    print_table(rows, ['GRPO seed', 'task reward, first quarter', 'last quarter', 'change', 'KL at the end', 'seconds'])


if __name__ == '__main__': main()
