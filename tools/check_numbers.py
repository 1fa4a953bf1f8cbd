#!/usr/bin/env python
"""Re-execute lessons in a scratch folder and diff every number they print against their stored outputs.

Every claim a lesson makes about a number must match the output beside it, and running a lesson again must give the outputs it stores.
This tool copies the notebooks' folder into a scratch folder, runs each listed notebook's copy there in a Jupyter kernel, from the
copy's folder, skipping the cells `nbdev-test` skips (`#| slow`, `#| cuda`, `#| notest`), and saves the executed notebook in the
scratch folder's `executed/`; the notebooks in the repository are only read. It pulls the numbers out of what each re-executed code
cell shows (printed text; results such as tables and tensors; fastai's training tables; images only by their caption), stored and
fresh, compares them one by one, and names the markdown cells that quote a number that moved: the sentences to re-read. Exit status 1
when a number moved.

    python tools/check_numbers.py nbs/0[0-7]_*.ipynb --skip-times [--tol 0.002] [--scratch DIR]

`--skip-times` ignores numbers next to a unit of time (s, ms, seconds, 00:01), which differ from run to run and machine to machine;
`--tol` ignores relative changes up to that size (default 0: a lesson should give its digits again exactly). The scratch folder is
deleted when nothing moved, unless it was named with `--scratch`.
"""
import argparse, html, json, os, re, shutil, subprocess, sys, tempfile
from pathlib import Path

NUMBER = re.compile(r'(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])')  # 1,234 is one number; 640, ends one
TIME = re.compile(r'(?<![\w.])\d[\d,]*(?:\.\d+)?\s*(?:s|ms|seconds?|min)\b|\b\d\d:\d\d\b')
PLACEHOLDER = re.compile(r'^<[\w.]+ object>$')  # what IPython shows as text for an HTML-only result

def _shown(text:str) -> str:
    "What a terminal shows of `text`: of each line rewritten with carriage returns (a progress bar), its last state"
    return '\n'.join(line.split('\r')[-1] for line in text.replace('\r\n', '\n').split('\n') if '\u2588' not in line.split('\r')[-1])

def _text(o) -> str:
    "The text of one output; HTML (fastai's training table, a placeholder's HTML) reduced to its cell contents"
    if o.get('output_type') == 'stream': return _shown(''.join(o['text']))
    data = o.get('data', {})
    text = ''.join(data.get('text/plain', ''))
    if PLACEHOLDER.match(text.strip()) and 'text/html' in data: text = ''.join(data['text/html'])
    if text.lstrip().startswith('<'): text = html.unescape(re.sub(r'<[^>]*>', ' ', re.sub(r'(?s)<style.*?</style>', ' ', text)))
    return text

def output_text(cell) -> str:
    "Everything a code cell shows as text, in order: streams, results and displays (images only by their caption)"
    return '\n'.join(_text(o) for o in cell.get('outputs', []) if o.get('output_type') in ('stream', 'execute_result', 'display_data'))

def numbers(text:str, skip_times:bool) -> list:
    if skip_times: text = TIME.sub(' ', text)
    return NUMBER.findall(text)

def differing(old:list, new:list, tol:float) -> list:
    "(stored, fresh) pairs that differ by more than `tol` relative; numbers only one side has are paired with None"
    pairs = [(a, b) for a, b in zip(old, new) if a != b and (tol == 0 or _far(a, b, tol))]
    return pairs + [(a, None) for a in old[len(new):]] + [(None, b) for b in new[len(old):]]

def _far(a:str, b:str, tol:float) -> bool:
    x, y = (float(v.replace(',', '')) for v in (a, b))
    return abs(x - y) > tol * max(abs(x), abs(y), 1e-12)

def scratch_copy(nb_path:Path, scratch:Path) -> Path:
    "Copy of the notebook's folder in `scratch` (once per folder), so that the lessons' relative paths and files resolve as in the repo"
    dest = scratch/nb_path.parent.name
    if not dest.exists():
        shutil.copytree(nb_path.parent, dest, ignore=shutil.ignore_patterns('_proc', '_docs', '.ipynb_checkpoints', '__pycache__'))
    return dest/nb_path.name

def run(nb_path:Path, flags:list, out:Path):
    "Execute `nb_path` from its folder in a Jupyter kernel, skipping the cells nbdev-test skips; save it to `out`; its cells, and the ids of those skipped"
    import nbformat
    from nbclient import NotebookClient
    from nbdev.process import NBProcessor
    from nbdev.test import _skip_cell
    processed = NBProcessor(nb_path, rm_directives=False, process=True).nb
    skip = _skip_cell(processed, flags, None)
    skipped = {c.get('id') for c in processed.cells if c.cell_type == 'code' and skip(c)}
    nb = nbformat.read(nb_path, as_version=4)
    client = NotebookClient(nb, timeout=None, kernel_name='python3', resources={'metadata': {'path': str(nb_path.parent)}})
    with client.setup_kernel(stderr=subprocess.DEVNULL):  # a kernel, as a reader's Jupyter runs it: fastai's tables and pandas' frames are shown as they were stored
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == 'code' and cell.get('id') not in skipped: client.execute_cell(cell, i)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return nb.cells, skipped

def check(nb_path:Path, scratch:Path, flags:list, tol:float, skip_times:bool) -> tuple:
    "Re-execute a copy of `nb_path` in `scratch`; print what moved; (numbers compared, numbers that moved)"
    stored = json.loads(nb_path.read_text())['cells']
    fresh_cells, skipped = run(scratch_copy(nb_path, scratch), flags, scratch/'executed'/nb_path.name)
    fresh = {c.get('id'): c for c in fresh_cells}
    prose = [(c.get('id'), ''.join(c['source'])) for c in stored if c['cell_type'] == 'markdown']
    compared = moved = 0
    for cell in stored:
        if cell['cell_type'] != 'code' or cell.get('id') in skipped or cell.get('id') not in fresh: continue
        old, new = numbers(output_text(cell), skip_times), numbers(output_text(fresh[cell['id']]), skip_times)
        compared += len(old)
        diff = differing(old, new, tol)
        if not diff: continue
        moved += len(diff)
        print(f'{nb_path.name} cell {cell["id"]}: {len(old)} numbers stored, {len(new)} now; {len(diff)} differ (stored -> now): '
              + ', '.join(f'{a} -> {b}' for a, b in diff[:8]) + (' ...' if len(diff) > 8 else ''))
        gone = {a for a, _ in diff if a is not None and len(a.replace(',', '').replace('.', '').lstrip('-0')) > 2}
        for cid, text in prose:
            quoted = sorted(n for n in gone if re.search(rf'(?<![\w.]){re.escape(n)}(?![\w])', text))
            if quoted: print(f'  prose {cid} quotes {", ".join(quoted)}: re-read it')
    unchecked = sorted(c['id'] for c in stored if c.get('id') in skipped and c.get('outputs'))
    print(f'{nb_path.name}: {compared} numbers compared, {moved} differ'
          + (f'; outputs not checked, as nbdev-test skips their cells: {", ".join(unchecked)}' if unchecked else ''), flush=True)
    return compared, moved

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+', type=Path)
    ap.add_argument('--tol', type=float, default=0., help='ignore relative changes up to this size (default: 0, any change)')
    ap.add_argument('--skip-times', action='store_true', help='ignore numbers next to a unit of time')
    ap.add_argument('--scratch', type=Path, help='folder to execute the copies in (default: a new temporary folder)')
    args = ap.parse_args()
    from nbdev.config import get_config
    flags = get_config().tst_flags.split()  # read here, from the repository, before anything runs in the scratch folder
    os.environ['IN_TEST'] = '1'
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix='check_numbers-'))
    scratch.mkdir(parents=True, exist_ok=True)
    results = [check(p.resolve(), scratch.resolve(), flags, args.tol, args.skip_times) for p in args.notebooks]
    compared, moved = (sum(r[i] for r in results) for i in (0, 1))
    cleared = not moved and not args.scratch
    print(f'{len(results)} notebooks re-executed in {scratch}' + (' (now deleted)' if cleared else '') + f': {compared} numbers compared, {moved} differ')
    if cleared: shutil.rmtree(scratch)
    sys.exit(1 if moved else 0)

if __name__ == '__main__': main()
