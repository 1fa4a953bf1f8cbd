"""Write README.md from nbs/index.ipynb without Quarto.

nbdev-readme renders the index notebook through Quarto, which cannot be installed on a machine that reaches only the
package index. This script gives the same result with nbconvert's markdown exporter: hidden cells and nbdev's `#|`
directives are dropped, outputs are kept, and links
to lessons and to images/ point into nbs/. `--check` compares instead of writing and exits 1 when README.md is stale.
"""
import argparse, re, sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter
from nbconvert.preprocessors import CoalesceStreamsPreprocessor, Preprocessor

ROOT = Path(__file__).resolve().parent.parent
_directive = re.compile(r'^\s*#\s*\|\s*(\S+)')

def _directives(src):
    return [m.group(1) for line in src.splitlines() if (m := _directive.match(line))]

class _DropEmptyInput(Preprocessor):
    "Mark code cells whose source was removed so the exporter shows their output alone"
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == 'code' and not cell.source: cell.metadata.setdefault('transient', {})['remove_source'] = True
        return cell, resources

def render(nb_path=ROOT/'nbs'/'index.ipynb'):
    "README text for the notebook at `nb_path`"
    nb = nbformat.read(nb_path, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == 'code':
            if {'hide', 'export', 'exporti', 'default_exp'} & set(_directives(cell.source)): continue
            # `#| echo: false` shows a cell's output without its code, as on the nbdev site
            if re.search(r'^\s*#\s*\|\s*echo:\s*false', cell.source, re.M): cell.source = ''
            cell.source = '\n'.join(l for l in cell.source.splitlines() if not _directive.match(l)).strip()
            # an empty code cell with no output would render as an empty fence
            if not cell.source and not cell.outputs: continue
        cells.append(cell)
    nb.cells = cells
    nb.metadata['language_info'] = {'name': 'python'} # fences code as Python; nbdev-clean strips this from the notebook
    exporter = MarkdownExporter(exclude_input_prompt=True)
    exporter.register_preprocessor(_DropEmptyInput(), enabled=True)
    # lines printed one at a time (a training table) make one block of output, not one block a line
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(), enabled=True)
    body, _ = exporter.from_notebook_node(nb)
    # lessons link to each other by notebook name, and to pictures in images/; from the repository root both live in nbs/
    body = re.sub(r'\]\(([\w-]+\.ipynb|images/)', r'](nbs/\1', body)
    return re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--check', action='store_true', help='exit 1 if README.md differs from what index.ipynb gives')
    args = p.parse_args()
    readme, text = ROOT/'README.md', render()
    if args.check:
        if not readme.exists() or readme.read_text() != text:
            sys.exit('README.md does not match nbs/index.ipynb: run `python tools/readme.py`')
        print('README.md matches nbs/index.ipynb')
    else:
        tmp = readme.with_suffix('.md.tmp')
        tmp.write_text(text)
        tmp.replace(readme)
        print(f'wrote {readme.relative_to(ROOT)}')

if __name__ == '__main__': main()
