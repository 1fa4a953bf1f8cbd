#!/usr/bin/env python
"""Re-execute lessons and diff the numbers they print against their stored outputs, naming the prose that quotes a changed one.

Every claim a lesson makes about a number must match the output beside it. After a change to the library, this tool runs each
notebook in memory as `nbdev-test` does (from nbs/, `#| slow` and `#| cuda` cells skipped, stored outputs left as they are),
pulls the numbers out of what each code cell printed (its streams, where a lesson states its results), old and new, and prints the cells whose numbers moved, with the markdown
cells that quote a moved number word for word: those are the sentences to re-read. Exit status 1 when a number moved.

    python tools/check_numbers.py nbs/04_weight_decay.ipynb [nbs/06_interpretation.ipynb ...] [--tol 0.002] [--skip-times]

`--tol` ignores relative changes up to that size; `--skip-times` ignores numbers next to a unit of time (s, ms, seconds, 00:01),
which differ from run to run and machine to machine.
"""
import argparse, os, re, sys
from pathlib import Path

NUMBER = re.compile(r'(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])')
TIME = re.compile(r'(?<![\w.])\d[\d,]*(?:\.\d+)?\s*(?:s|ms|seconds?|min)\b|\b\d\d:\d\d\b')

def _shown(text:str) -> str:
    "What a terminal shows of `text`: of each line rewritten with carriage returns (a progress bar), its last state"
    return '\n'.join(line.split('\r')[-1] for line in text.replace('\r\n', '\n').split('\n') if '\u2588' not in line.split('\r')[-1])

FASTAI_ROW = re.compile(r'^\s*(epoch\s+train_loss.*|\d+\s+[\d.]+\s+\S+.*\d\d:\d\d\s*)$')

def output_text(cell) -> str:
    "What a code cell printed (its streams), less progress bars and fastai's epoch table: those a notebook stores as HTML, not as text"
    text = '\n'.join(_shown(''.join(o['text'])) for o in cell.get('outputs', []) if o.get('output_type') == 'stream')
    return '\n'.join(line for line in text.split('\n') if not FASTAI_ROW.match(line))

def numbers(text:str, skip_times:bool) -> list:
    if skip_times: text = TIME.sub(' ', text)
    return NUMBER.findall(text)

def moved(old:list, new:list, tol:float) -> bool:
    if len(old) != len(new): return True
    for a, b in zip(old, new):
        if a == b: continue
        x, y = (float(v.replace(',', '')) for v in (a, b))
        if abs(x - y) > tol * max(abs(x), abs(y), 1e-12): return True
    return False

def run(nb_path:Path):
    "The notebook's cells after running it in memory as nbdev-test does"
    from nbdev.process import NBProcessor
    from nbdev.test import _skip_cell
    from nbdev.config import get_config
    from execnb.shell import CaptureShell
    nb = NBProcessor(nb_path, rm_directives=False, process=True).nb
    flags = get_config().tst_flags.split()
    here = Path.cwd()
    os.chdir(nb_path.parent)
    try:
        shell = CaptureShell(nb_path)
        shell.run_all(nb, exc_stop=True, preproc=_skip_cell(nb, flags, None))
    finally: os.chdir(here)
    return nb.cells

def check(nb_path:Path, tol:float, skip_times:bool) -> int:
    import json
    stored = json.loads(nb_path.read_text())['cells']
    fresh = {c.get('id'): c for c in run(nb_path)}
    changed = 0
    for i, cell in enumerate(stored):
        if cell['cell_type'] != 'code' or cell.get('id') not in fresh: continue
        new_cell = fresh[cell['id']]
        old, new = numbers(output_text(cell), skip_times), numbers(output_text(new_cell), skip_times)
        if not moved(old, new, tol): continue
        changed += 1
        diff = [(a, b) for a, b in zip(old, new) if a != b][:8]
        print(f'{nb_path.name} cell {cell["id"]}: {len(old)} numbers stored, {len(new)} now; first differences (stored -> now): '
              + ', '.join(f'{a} -> {b}' for a, b in diff))
        gone = {a for a, b in zip(old, new) if a != b} | set(old[len(new):])
        for md in stored[i + 1:]:
            if md['cell_type'] == 'code' and md.get('outputs'): break
            if md['cell_type'] != 'markdown': continue
            text = ''.join(md['source'])
            quoted = sorted(n for n in gone if len(n.replace(',', '').replace('.', '')) > 2 and re.search(rf'(?<![\w.]){re.escape(n)}(?![\w])', text))
            if quoted: print(f'  prose {md.get("id")} quotes {", ".join(quoted)}: re-read it')
    return changed

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+', type=Path)
    ap.add_argument('--tol', type=float, default=0., help='ignore relative changes up to this size (default: 0, any change)')
    ap.add_argument('--skip-times', action='store_true', help='ignore numbers next to a unit of time')
    args = ap.parse_args()
    os.environ.setdefault('IN_TEST', '1')
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    total = sum(check(p.resolve(), args.tol, args.skip_times) for p in args.notebooks)
    print(f'{total} cell(s) with numbers that moved' if total else 'no number moved')
    sys.exit(1 if total else 0)

if __name__ == '__main__': main()
