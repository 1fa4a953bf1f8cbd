#!/usr/bin/env python
"""The silent surprises a new user met in the Python API and the command line (issue 21's list), each tried again.

Every case is a check that holds when the surprise is gone: a clear error where there was a silent fallback, one output shape
where there were three, and so on. It imports `collabnb` from `sys.path` and runs `python -m collabnb` with the same
environment, so pointing PYTHONPATH at another checkout, from a folder outside this one (`python -m` and `-c` put the current
folder first on sys.path), tries that one instead (how the cases were shown to fail before).

    python tools/surprises.py [--only NAME ...]

Prints one line per case, `holds` or `FAILS` with what was seen; exit status 1 when a case fails. Needs MovieLens-100K
(fetched into fastai's cache on first use) and trains a few one-epoch models: about a minute on two cores.
"""
import argparse, contextlib, io, json, os, subprocess, sys, tempfile, traceback, warnings
from pathlib import Path

CASES = {}
def case(f): CASES[f.__name__] = f; return f

def cli(*args, stdin=None) -> subprocess.CompletedProcess:
    "`python -m collabnb ARGS` as a separate process, its output captured (a pipe, not a terminal)"
    return subprocess.run([sys.executable, '-m', 'collabnb', *map(str, args)], capture_output=True, text=True, encoding='utf-8',
                          env=os.environ | {'PYTHONIOENCODING': 'utf-8'}, timeout=600)

class World:
    "What the cases share, made once: a one-epoch model from Python and one from the command line"
    def __init__(self, tmp:Path):
        from collabnb.recommend import Recommender
        from collabnb.data import load_ratings
        self.tmp, self.R = tmp, Recommender
        self.df = load_ratings('u1', item='id')
        self.model = tmp/'model'
        self.train = cli('train', '--data', 'ml-100k', '--split', 'u1', '--epochs', 1, '--out', self.model)
        import numpy as np
        rng = np.random.default_rng(0) # 40 users with 12 ratings each, tested on ratings of two users and an item never trained on
        rows = [(u, i) for u in range(40) for i in rng.choice(30, 12, replace=False)]
        title = lambda i: '東京物語 (1953)' if i == 0 else f'Film {i}'
        small, held = tmp/'small.csv', tmp/'held.csv'
        small.write_text('user,item,rating,title\n' + ''.join(f'{u},{i},{int(rng.integers(1, 6))},{title(i)}\n' for u, i in rows), encoding='utf-8')
        held.write_text('user,item,rating,title\n1,1,3,Film 1\n100,1,3,Film 1\n101,2,4,Film 2\n3,99,4,Film 99\n', encoding='utf-8')
        self.small = cli('train', '--data', small, '--test', held, '--epochs', 1, '--out', tmp/'small')
        try:
            with contextlib.redirect_stdout(io.StringIO()): self.rec = Recommender.fit(self.df, 'bias', epochs=1, seed=0)
        except Exception as e: self.rec = None; print(f'Recommender.fit failed ({type(e).__name__}: {e}); the cases that need it fail')

@case
def threads_option(w):
    "every command that computes takes --threads"
    lacking = [c for c in ('train', 'evaluate', 'recommend', 'similar', 'fold-in', 'bench') if '--threads' not in cli(c, '-h').stdout]
    return not lacking, f'without --threads: {lacking}' if lacking else 'train, evaluate, recommend, similar, fold-in, bench'

@case
def fit_threads(w):
    "Recommender.fit trains with one PyTorch thread unless told otherwise, as the command line does, not one per core"
    import torch
    code = ("import contextlib, io, torch\nfrom collabnb.recommend import Recommender\nfrom collabnb.data import load_ratings\n"
            "seen, backward = set(), torch.Tensor.backward\n"
            "def counted(self, *a, **k): seen.add(torch.get_num_threads()); return backward(self, *a, **k)\n"
            "torch.Tensor.backward = counted\ndf = load_ratings('u1', item='id')\n"
            "with contextlib.redirect_stdout(io.StringIO()): Recommender.fit(df[df.user < 50], 'bias', epochs=1)\nprint(sorted(seen))")
    got = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600, cwd=w.tmp) # not the checkout's folder, which `-c` puts first on sys.path
    seen = got.stdout.strip()
    return seen == '[1]', f'threads while training: {seen or got.stderr.strip()[-160:]} (PyTorch would take {torch.get_num_threads()} here)'

@case
def evaluate_without_split(w):
    "evaluate() on a frame without is_valid refuses, naming it, and scores no training rows in silence"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        try: got = w.rec.evaluate(w.df.drop(columns='is_valid'))
        except ValueError as e: return 'is_valid' in str(e) and not seen, f'ValueError: {e}'
    return False, f'returned RMSE {got.get("rmse")}, warnings: {[str(x.message) for x in seen]}'

@case
def fit_keeps_split(w):
    "fit records the split it drew, and evaluate() with no argument scores its validation rows"
    got = w.rec.evaluate()
    held = w.rec.ratings.is_valid.sum()
    return held == w.df.is_valid.sum() and abs(got['rmse'] - w.rec.info['valid_rmse']) < 1e-6, f'{held:,} held-out rows, RMSE {got["rmse"]:.4f}'

@case
def predict_title_for_id(w):
    "predict(196, 'Star Wars (1977)'): a title where an id belongs is an error, not the fallback score"
    try: got = w.rec.predict(196, 'Star Wars (1977)')
    except ValueError as e: return True, f'ValueError: {e}'
    return False, f'returned {got!r}'

@case
def predict_unknown_id(w):
    "predict(196, 999999): an unknown id is an error by default, the fallback on request"
    try: got = w.rec.predict(196, 999999)
    except ValueError as e:
        blank = w.rec.predict(196, 999999, unknown='blank')
        return isinstance(blank, float), f'ValueError: {e}; unknown="blank": {blank:.4f}'
    return False, f'returned {got!r}'

@case
def predict_types(w):
    "one pair gives a Python float, many a float64 array"
    import numpy as np
    one, many = w.rec.predict(196, 242), w.rec.predict([196, 186], [242, 302])
    ok = type(one) is float and isinstance(many, np.ndarray) and many.dtype == np.float64
    return ok, f'one: {type(one).__name__}, many: {type(many).__name__} of {getattr(many, "dtype", None)}'

@case
def fit_own_column_names(w):
    "Recommender.fit on a frame read from MovieLens's ratings.csv (userId, movieId, rating) finds the columns as train does"
    frame = w.df[['user', 'item', 'rating']].rename(columns={'user': 'userId', 'item': 'movieId'}).head(5000)
    with contextlib.redirect_stdout(io.StringIO()):
        try: got = w.R.fit(frame, 'bias', epochs=1, bar=False)
        except Exception as e: return False, f'{type(e).__name__}: {e}'
    return got.n_users > 0, repr(got)

@case
def json_shapes(w):
    "recommend --user and --users give the same JSON objects"
    users = w.tmp/'users.txt'
    users.write_text('1\n')
    one, many = cli('recommend', w.model, '--user', 1, '--n', 2, '--json'), cli('recommend', w.model, '--users', users, '--n', 2, '--json')
    try: a, b = json.loads(one.stdout), json.loads(many.stdout)
    except ValueError: return False, f'not JSON: {one.stdout[:80]!r} / {many.stdout[:80]!r} {one.stderr[-200:]}'
    return list(a[0]) == list(b[0]), f'--user: {list(a[0])}; --users: {list(b[0])}'

@case
def similar_says_similarity(w):
    "similar --json names its column `similarity`, as the table and Python do"
    got = cli('similar', w.model, '--item', 50, '--n', 2, '--json')
    try: keys = list(json.loads(got.stdout)[0])
    except ValueError: return False, f'not JSON: {got.stdout[:80]!r} {got.stderr[-200:]}'
    return 'similarity' in keys and 'score' not in keys, str(keys)

@case
def notes_on_stderr(w):
    "the note about an unknown user goes to stderr, in a table as in JSON, so that stdout holds the result alone"
    table, js = (cli('recommend', w.model, '--user', 'nobody', '--n', 2, *more) for more in ((), ('--json',)))
    try: json.loads(js.stdout)
    except ValueError: return False, f'--json stdout is not JSON: {js.stdout[:120]!r}'
    ok = 'nobody' in table.stderr and 'note' not in table.stdout and 'nobody' in js.stderr
    return ok, f'table stdout: {table.stdout.strip().splitlines()[0][:100]!r}; stderr: {table.stderr.strip()[:80]!r}'

@case
def json_keeps_utf8(w):
    "JSON keeps non-ASCII text as it is, not as \\u escapes"
    if w.small.returncode: return False, f'train: {w.small.stderr.strip()[-160:]}'
    got = cli('similar', w.tmp/'small', '--item', 1, '--n', 29, '--json')
    return '東京' in got.stdout and '\\u6771' not in got.stdout, got.stdout[:100]

@case
def no_bar_residue(w):
    "Recommender.fit with its default bar=True writes no progress-bar frames into a pipe"
    script = ("from collabnb.recommend import Recommender\nfrom collabnb.data import load_ratings\n"
              "Recommender.fit(load_ratings('u1', item='id').head(20000), 'bias', epochs=1)\n")
    got = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, env=os.environ | {'IN_TEST': ''}, timeout=600)
    text = got.stdout + got.stderr
    return got.returncode == 0 and '\r' not in text and '\u2588' not in text, repr(text[-160:])

@case
def users_are_real(w):
    "rec.users holds real users only (no '#na#'), and recommend() with no users recommends for all of them"
    users = list(w.rec.users)
    if '#na#' in users: return False, "'#na#' in rec.users"
    try: everyone = w.rec.recommend(n=1)
    except Exception as e: return False, f'recommend(n=1): {type(e).__name__}: {e}'
    return len(everyone) == len(users), f'{len(users)} users, {len(everyone)} rows'

@case
def fold_in_movie_id(w):
    "fold-in reads a movieId column, as train does"
    new = w.tmp/'new_user.csv'
    new.write_text('movieId,rating\n50,5\n172,5\n181,5\n')
    got = cli('fold-in', w.model, '--ratings', new, '--n', 3)
    return got.returncode == 0, (got.stderr.strip().splitlines() or [''])[-1][:120]

@case
def fold_in_toward_average(w):
    "fold_in pulls a new user toward the average user by default (lesson 06's finding)"
    import inspect
    p = inspect.signature(w.R.fold_in).parameters.get('prior')
    return p is not None and p.default == 'average', f'prior default: {None if p is None else p.default!r}'

@case
def readme_new_user_file(w):
    "the README shows what new_user.csv holds"
    import collabnb
    readme = Path(collabnb.__file__).resolve().parent.parent/'README.md' # the checkout under test
    text = readme.read_text(encoding='utf-8') if readme.exists() else ''
    shown = 'new_user.csv' in text and any(l.strip() in ('title,rating', 'movieId,rating', 'item,rating') for l in text.splitlines())
    return shown, 'a header line shown' if shown else 'no file content shown'

@case
def train_counts_its_users(w):
    "train's first line counts the users the model holds, not those seen only in validation"
    import re
    said = re.search(r'of ([\d,]+) users', w.small.stdout + w.small.stderr)
    if said is None: return False, f'no user count in {(w.small.stdout + w.small.stderr)[:100]!r}'
    held = len(w.R.load(w.tmp/'small').users)
    return int(said.group(1).replace(',', '')) == held, f'says {said.group(1)}, the model holds {held}'

@case
def history_rounded(w):
    "meta.json's history holds rounded numbers, not float32 noise"
    import re
    text = json.dumps(json.loads((w.model/'meta.json').read_text()).get('info', {}).get('history', ''))
    noisy = [x for x in re.findall(r'\d+\.\d+', text) if len(x.split('.')[1]) > 6]
    return not noisy and text not in ('""', 'null'), f'{noisy[:2]}' if noisy else text[:100]

@case
def clipped_ties_ranked(w):
    "top-N lists rank by the model's own scores, so items that clip to the top of the scale keep their order"
    import numpy as np
    from collabnb.recommend import user_scores
    r = w.rec
    lifted = {k: (v + 1.5 if k == 'item_bias.weight' else v) for k,v in r.weights.items()} # many items now score above 5 stars
    r = w.R(lifted, r.arch, r.user_vocab, r.item_vocab, r.titles, r.rated, r.counts, r.info)
    raw = user_scores(r, np.array([r.user_row(1)]))[0]
    top = r.recommend(1, 10)
    got = raw[[r.item_row(i) for i in top.item]]
    clipped = int((top.score == top.score.max()).sum())
    return bool(np.all(np.diff(got) <= 0)) and clipped > 1, f'{clipped} of 10 shown as {top.score.max():g}; raw scores of the list: {np.round(got[:3], 3).tolist()}'

@case
def bench_without_surprise(w):
    "bench --only surprise-svd without Surprise installed ends in one error line and exit 2, not a traceback"
    hide = "import sys, runpy; sys.modules['surprise'] = None; sys.argv = ['collabnb', 'bench', '--only', 'surprise-svd']; runpy.run_module('collabnb', run_name='__main__')"
    got = subprocess.run([sys.executable, '-c', hide], capture_output=True, text=True, timeout=600)
    lines = got.stderr.strip().splitlines()
    ok = got.returncode == 2 and 'Traceback' not in got.stderr and lines and lines[-1].startswith('collabnb: error:')
    return ok, f'exit {got.returncode}: {lines[-1][:120] if lines else ""}'

@case
def bench_row_line(w):
    "the benchmark says when each row starts, before its minutes of work"
    got = cli('bench', '--only', 'collabnb-dotproduct')
    lines = got.stderr.strip().splitlines() + got.stdout.strip().splitlines()
    start = next((l for l in lines if 'collabnb-dotproduct' in l and 'training' in l), None)
    return got.returncode == 0 and start is not None, f'{start!r}' if start else f'exit {got.returncode}; lines: {lines[:3]}'

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--only', nargs='*', default=list(CASES), help='the cases to try')
    args = p.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        for name in args.only:
            try: ok, seen = CASES[name](w)
            except Exception as e: ok, seen = False, f'{type(e).__name__}: {str(e)[:160]}'
            failed += not ok
            print(f'{"holds" if ok else "FAILS"}  {name}: {CASES[name].__doc__} -- {seen}', flush=True)
    print(f'{len(args.only) - failed} of {len(args.only)} hold')
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
