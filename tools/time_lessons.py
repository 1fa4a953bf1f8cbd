#!/usr/bin/env python
"""Time the core lessons, so the index can say how long each takes to run.

Executes each core notebook (00 to 07, in memory: the stored outputs are left as they are) one after another, from
nbs/ as nbdev-test does, and writes the wall-clock minutes to nbs/lesson_minutes.json, which nbs/index.ipynb reads.
Run it on an otherwise idle machine, with the data already in the cache (a first run adds the download):

    python tools/time_lessons.py [--only 00_data,01_dot_product]
"""
import argparse, json, os, platform, sys, time
from datetime import date
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from collabnb.files import write_file

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
OUT = NBS/'lesson_minutes.json'
CORE = ('00', '01', '02', '03', '04', '05', '06', '07')


def core_notebooks():
    "Core lessons in course order: every notebook whose number is 00 to 07"
    return sorted(p for p in NBS.glob('0*.ipynb') if p.name[:2] in CORE)


def minutes_to_run(path):
    "Wall-clock minutes to execute the notebook at `path` from its folder, as a test run would (IN_TEST set)"
    nb = nbformat.read(path, as_version=4)
    os.environ['IN_TEST'] = '1'
    start = time.perf_counter()
    NotebookClient(nb, timeout=3600, resources={'metadata': {'path': str(path.parent)}}).execute()
    return (time.perf_counter() - start) / 60


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--only', help='comma-separated notebook names (no .ipynb) to re-time; the others keep their entries')
    args = ap.parse_args()
    paths = core_notebooks()
    if args.only:
        wanted = set(args.only.split(','))
        unknown = wanted - {p.stem for p in paths}
        if unknown: ap.error(f'--only: not core lessons: {sorted(unknown)}')
        paths = [p for p in paths if p.stem in wanted]
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    minutes = dict(old.get('minutes', {}))
    for p in paths:
        minutes[p.stem] = round(minutes_to_run(p), 2)
        print(f'{p.stem}: {minutes[p.stem]:.2f} min', flush=True)
    import torch  # only to say whether the lessons could use a GPU
    gpu = f'GPU {torch.cuda.get_device_name(0)}' if torch.cuda.is_available() else 'no GPU'
    record = {'minutes': {k: minutes[k] for k in sorted(minutes)},
              'machine': f'{os.cpu_count()} CPU cores, {platform.machine()}, {gpu}', 'measured': date.today().isoformat()}
    write_file(OUT, (json.dumps(record, indent=1) + '\n').encode())
    print(f'wrote {OUT.relative_to(ROOT)}')


if __name__ == '__main__': sys.exit(main())
