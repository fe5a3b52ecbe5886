"""Does the adapter read the image? Train the same task twice on the embedded tiny model, with its vision tower frozen
and with it trained (`train_vision`), and report each merged model against its own image ablation (the same cases,
each shown the image of another case of its subtask and modality).

    python bench/vision_bench.py                         # pediatric, 800 train / 120 held-out cases, 600 steps
    python bench/vision_bench.py --task clinical --steps 300

Prints one row per (vision tower, metric): the merged model's value, the ablated value, and the paired test's p-value
on the same cases. This is the measurement behind chapter 02's choice of `train_vision=True` for `tiny`.
"""
import argparse, sys, tempfile, time, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table
from medgemma_lora.pipeline import ABLATED, run_pipeline
from medgemma_lora.score import get_path, get_scorer, metric_value

METRICS = {'pediatric': ['fracture_f1', 'fracture_auc', 'rop_auc.stage_ge2', 'rop_auc.plus_disease', 'rop_accuracy.exact', 'mae_months'],
           'clinical': ['accuracy', 'by_image.dependent.accuracy', 'error_auc'],
           'rtl': ['label_accuracy', 'label_accuracy_by_claim.image']}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--task', default='pediatric', choices=list(METRICS))
    p.add_argument('--n-train', type=int, default=800); p.add_argument('--n-eval', type=int, default=120)
    p.add_argument('--steps', type=int, default=600); p.add_argument('--seed', type=int, default=0)
    a = p.parse_args(argv)
    work, rows = Path(tempfile.mkdtemp()), []
    for train_vision in (False, True):
        t0 = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)
            res = run_pipeline(a.task, work/f'vision-{train_vision}', n_train=a.n_train, n_eval=a.n_eval, seed=a.seed,
                               max_steps=a.steps, train_vision=train_vision, verbose=False)
        runs, comp = res['metrics']['runs'], res['metrics']['comparisons'][1]['metrics']
        show = lambda v: '—' if v is None else f'{v:.3f}'
        show_p = lambda p: '—' if p is None else '<0.001' if p < 0.001 else f'{p:.3f}'
        for m in METRICS[a.task] + [x for x in get_scorer(a.task).headline if x not in METRICS[a.task]]:
            rows.append({'vision tower': 'trained' if train_vision else 'frozen', 'metric': m,
                         'merged': show(metric_value(get_path(runs['merged'], m))), 'images permuted': show(metric_value(get_path(runs[ABLATED], m))),
                         'paired test': (comp.get(m) or {}).get('test') or '—', 'p': show_p((comp.get(m) or {}).get('p_value'))})
        print(f"vision tower {'trained' if train_vision else 'frozen'}: trainable {res['train']['trainable_params']}, "
              f"{time.time() - t0:.0f}s", file=sys.stderr)
    print_table(rows, ['vision tower', 'metric', 'merged', 'images permuted', 'paired test', 'p'])


if __name__ == '__main__':
    main()
