#!/usr/bin/env python
"""Offline "reader check" of the course website.

Renders every notebook in nbs/ with its *stored* outputs (nothing is executed) to
self-contained HTML, serves the pages on 127.0.0.1 and opens each one in headless
Chromium, failing on anything a reader would trip over: console errors, error
outputs, broken lesson links, broken images, promised-but-missing plots,
progress-bar residue, and any request that tries to leave the machine.

    python tools/check_site.py [--nbs nbs] [--screenshots DIR] [--chromium PATH]

Needs: nbconvert, playwright (the Python package only; we drive the system
chromium, never a Playwright-downloaded browser). Exit status 1 on any problem.
"""
import argparse, ast, functools, http.server, os, re, sys, tempfile, threading, time
STARTED = time.time()  # before the heavy imports, so the reported time is the real cost
from pathlib import Path
from urllib.parse import urlsplit, unquote

import nbformat
from nbconvert import HTMLExporter
from playwright.sync_api import Error as PlaywrightError, TimeoutError as PlaywrightTimeout, sync_playwright

# nbconvert's lab template loads require.js, MathJax, mermaid and the widget
# manager from CDNs; an offline check must not, so those blocks are emptied.
# LaTeX is left as plain text, which is enough to read the page.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js %}{% endblock %}
{% block html_head_js_mathjax %}{% endblock %}
{% block html_head_js_mermaidjs %}{% endblock %}
{% block jupyter_widgets %}{% endblock %}
"""
# Cells tagged like this are meant to show an error (Jupyter's own convention).
EXPECTED_ERROR_TAG = 'raises-exception'
TRACEBACK_RE = re.compile(r'Traceback \(most recent call last\)')
# fastprogress/tqdm leftovers. Note fastai's tables ship a `<style>progress {...}`
# rule, so only a real <progress element counts, not the word.
PROGRESS_RE = re.compile(r'<progress[\s>]|\d+(\.\d+)?% \[\d+/\d+|\d+%\|[^|\n]{0,100}\||\|[█▏▎▍▌▋▊▉]{2,}')
STRAY_CR_RE = re.compile(r'\r(?!\n)')
# Call names that draw a figure. show_results/show_batch are left out on purpose:
# for collaborative filtering they print tables, not images.
PLOT_NAME_RE = re.compile(r'plot\w*|scatter|hist|imshow|heatmap|lr_find|show_image')
NOT_DRAWING = {'close', 'ioff', 'ion', 'rc', 'rcdefaults', 'switch_backend', 'savefig', 'setp', 'style'}
PLOT_WORDS_RE = re.compile(r'\b(plot|chart|scatter|curve|figure|graph|histogram)s?\b', re.I)
MD_LINK_RE = re.compile(r'\[[^\]]*\]\([^)]*\)')
# Relative .ipynb links (no scheme, not absolute, not a bare #anchor) become .html,
# as nbdev's Quarto site does when it publishes the notebooks.
IPYNB_HREF_RE = re.compile(r'(href=")(?![a-zA-Z][\w+.-]*:|/|#)([^"#?]*?)\.ipynb(?=[#?"])')
DIRECTIVE_RE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')  # `#| key: value`
HIDDEN_DIRECTIVES = {'export', 'exporti', 'hide', 'default_exp'}  # cells nbdev drops from the docs
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
                 '--disable-default-apps', '--disable-extensions',
                 # backstop for anything page.route cannot see (e.g. browser-internal fetches)
                 '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']


def find_notebooks(nbs):
    "Notebooks nbdev would publish: skip `_`/`.`-prefixed files and folders (checkpoints, _proc...)."
    return sorted((p for p in nbs.rglob('*.ipynb')
                   if not any(part.startswith(('_', '.')) for part in p.relative_to(nbs).parts)),
                  key=lambda p: (p != nbs/'index.ipynb', p))  # index first, then lesson order


def reader_view(nb):
    "Drop what nbdev/Quarto hide from readers, so we check only what they will see."
    cells = []
    for cell in nb.cells:
        if cell.cell_type == 'code':
            lines = cell.source.splitlines()
            dirs = dict(m.groups() for l in lines if (m := DIRECTIVE_RE.match(l)))
            if dirs.keys() & HIDDEN_DIRECTIVES or dirs.get('include') == 'false': continue
            if dirs.get('output') == 'false': cell.outputs = []
            # nbdev never runs `eval: false` cells, and `output: false` hides what they draw: neither can be expected to show a plot
            cell.metadata['check_site_eval'] = dirs.get('eval') != 'false' and dirs.get('output') != 'false'
            cell.source = '' if dirs.get('echo') == 'false' else '\n'.join(l for l in lines if not DIRECTIVE_RE.match(l))
            # Quarto drops the code of an `echo: false` cell and shows its output alone; so does the template with this flag
            if dirs.get('echo') == 'false': cell.metadata.setdefault('transient', {})['remove_source'] = True
        cells.append(cell)
    nb.cells = cells
    return nb


def plot_calls(src):
    "Names of figure-drawing calls made when the cell runs (bodies of def/class/lambda don't run)."
    src = '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!')))
    try: tree = ast.parse(src)
    except SyntaxError: return []
    found = []
    def visit(node):
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)): continue
            if isinstance(ch, ast.Call):
                parts = [p for p in re.split(r'[.\[\]()]+', ast.unparse(ch.func)) if p]
                no_plot = any(k.arg == 'show_plot' and getattr(k.value, 'value', True) is False for k in ch.keywords)
                if parts and not no_plot and ('plot' in parts[:-1] or PLOT_NAME_RE.fullmatch(parts[-1])
                        or (parts[0] in ('plt', 'sns') and not NOT_DRAWING & set(parts[1:]))):
                    found.append(ast.unparse(ch.func))
            visit(ch)
    visit(tree)
    return found


def has_image(out):
    data = out.get('data', {})
    return any(k.startswith('image/') for k in data) or bool(re.search(r'<(img|svg)\b', str(data.get('text/html', ''))))


def output_texts(out):
    if out.output_type == 'stream': return [out.text]
    if out.output_type == 'error': return ['\n'.join(out.traceback)]
    return [str(v) for k, v in out.get('data', {}).items() if k.startswith('text/')]


def check_stored(nb):
    "Problems visible in the notebook JSON itself. Returns (problems, notes, n_images)."
    problems, notes, n_images = [], [], 0
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type != 'code': continue
        expected_error = EXPECTED_ERROR_TAG in cell.metadata.get('tags', [])
        if not cell.source.strip() and not cell.get('metadata', {}).get('transient', {}).get('remove_source'):
            problems.append(f'cell {i}: empty input box (an empty code cell, or one whose code is all directives)')
        for out in cell.outputs:
            if out.output_type == 'error' and not expected_error:
                problems.append(f'cell {i}: stored error output ({out.ename}: {out.evalue})'[:200])
            if any(PROGRESS_RE.search(t) for t in output_texts(out)):
                problems.append(f'cell {i}: progress-bar residue in output')
            elif out.output_type == 'stream' and STRAY_CR_RE.search(out.text):
                problems.append(f'cell {i}: stray "\\r" progress lines in {out.name}')
        images = sum(has_image(o) for o in cell.outputs)
        n_images += images
        calls = plot_calls(cell.source) if cell.metadata.get('check_site_eval', True) else []
        if calls and not images:
            problems.append(f'cell {i}: calls {calls[0]}() but has no stored image output')
    # links are dropped first: "[the plotting lesson](03_x.ipynb)" promises nothing here
    prose = ' '.join(MD_LINK_RE.sub('', c.source) for c in nb.cells if c.cell_type == 'markdown')
    if not n_images and PLOT_WORDS_RE.search(prose):
        notes.append('markdown talks about a plot/chart but the page has no image (weak signal, not counted)')
    return problems, notes, n_images


def render(nb_paths, nbs, out_dir):
    "Write one self-contained .html per notebook; return {page.html: (notebook name, stored problems, notes)}."
    exporter = HTMLExporter(template_name='lab', raw_template=OFFLINE_TEMPLATE)
    results = {}
    for path in nb_paths:
        rel = path.relative_to(nbs).with_suffix('.html')
        nb = reader_view(nbformat.read(path, as_version=4))
        problems, notes, _ = check_stored(nb)
        body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': path.stem}})
        (out_dir/rel).parent.mkdir(parents=True, exist_ok=True)
        (out_dir/rel).write_text(IPYNB_HREF_RE.sub(r'\1\2.html', body), encoding='utf-8')
        results[rel.as_posix()] = (path.relative_to(nbs).as_posix(), problems, notes)
    return results


def serve(site, nbs):
    "Serve rendered pages; anything else (images/, data files) falls back to nbs/, as Quarto copies them."
    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            p = super().translate_path(path)
            return p if os.path.exists(p) else os.path.join(nbs, os.path.relpath(p, self.directory))
        def log_message(self, *args): pass
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# Run inside the page after load: everything we need from the DOM in one round trip.
PAGE_PROBE = """() => {
  const outputs = [...document.querySelectorAll('.jp-OutputArea-output')]
    .filter(o => !o.closest('.celltag_%s'));
  return {
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
    outputImages: document.querySelectorAll('.jp-OutputArea-output img, .jp-OutputArea-output svg').length,
    tracebacks: outputs.filter(o => /%s/.test(o.innerText)).length,
    progress: outputs.filter(o => o.querySelector('progress')).length,
    emptyInputs: [...document.querySelectorAll('.jp-CodeCell .jp-InputArea')].filter(a => !a.innerText.trim()).length,
  };
}""" % (EXPECTED_ERROR_TAG, TRACEBACK_RE.pattern)


def check_page(page, base, rel, pages, stored_problems):
    "Load one page in the browser; return (problems, number of images in outputs)."
    console, external = [], []
    def on_route(route):
        host = urlsplit(route.request.url).hostname
        if host == '127.0.0.1': return route.continue_()
        external.append(route.request.url)
        route.abort()
    page.route('**/*', on_route)
    page.on('console', lambda m: m.type == 'error' and console.append((m.text, m.location.get('url', ''))))
    page.on('pageerror', lambda e: console.append((f'uncaught {e.name}: {e.message}', '')))
    try: page.goto(f'{base}/{rel}', wait_until='load', timeout=30000)
    except PlaywrightError as e: return [f'page did not load: {e.message.splitlines()[0]}'], 0
    try: page.wait_for_load_state('networkidle', timeout=5000)
    except PlaywrightTimeout: pass  # a page that never goes idle is still worth checking
    probe = page.evaluate(PAGE_PROBE)

    problems = [f'request leaves localhost: {u}' for u in dict.fromkeys(external)]
    broken = {i['src'] for i in probe['images'] if not i['ok']}
    problems += [f'broken image: {src.removeprefix(base + "/")[:100]}' for src in sorted(broken) if src not in external]
    for text, url in console:
        # a failed external or image load is already reported above, more precisely
        if url and (url in broken or url in external): continue
        problems.append(f'console error: {text}'[:200])
    for href in dict.fromkeys(probe['links']):
        u = urlsplit(href)
        path = unquote(u.path).lstrip('/')
        if u.hostname == '127.0.0.1' and path.endswith(('.html', '.ipynb')) and path not in pages:
            problems.append(f'broken link: {path}' + (' (notebook not rendered)' if path.endswith('.ipynb') else ''))
    if probe['tracebacks'] and not any('stored error' in p for p in stored_problems):
        problems.append(f'{probe["tracebacks"]} output(s) show a traceback')
    if probe['emptyInputs'] and not any('empty input' in p for p in stored_problems):
        problems.append(f'{probe["emptyInputs"]} empty input box(es) on the page')
    if probe['progress'] and not any('progress' in p for p in stored_problems):
        problems.append(f'{probe["progress"]} output(s) contain a <progress> bar')
    return problems, probe['outputImages']


def screenshot(page, base, rel, out, plot=False):
    page.goto(f'{base}/{rel}', wait_until='load')
    if plot:  # lessons are long: show the first figure, not a 20k-pixel strip
        page.locator('.jp-OutputArea-output img, .jp-OutputArea-output svg').first.scroll_into_view_if_needed()
    page.screenshot(path=str(out), full_page=not plot)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--nbs', type=Path, default=Path(__file__).resolve().parents[1]/'nbs')
    ap.add_argument('--screenshots', type=Path, help='save index.png, the pages named by --shoot, and the first lesson page with a plot here')
    ap.add_argument('--shoot', default='06_interpretation', help='comma-separated notebook names (no .ipynb) to screenshot whole; each must exist')
    ap.add_argument('--chromium', default='/usr/bin/chromium')
    args = ap.parse_args()
    nbs = args.nbs.resolve()
    if not nbs.is_dir(): ap.error(f'no notebook folder at {nbs}')
    if not os.access(args.chromium, os.X_OK): ap.error(f'no chromium at {args.chromium} (apt-get install -y chromium)')
    nb_paths = find_notebooks(nbs)
    problems = []  # (page, message)
    if not (nbs/'index.ipynb').exists(): problems.append(('index.ipynb', f'missing from {nbs}'))

    with tempfile.TemporaryDirectory(prefix='site-check-') as tmp, sync_playwright() as pw:
        site = Path(tmp)
        results = render(nb_paths, nbs, site)
        server = serve(site, nbs)
        base = f'http://127.0.0.1:{server.server_address[1]}'
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
        plot_page = None
        try:
            for rel, (name, stored, notes) in results.items():
                page = browser.new_page(viewport={'width': 1280, 'height': 900})
                found, n_images = check_page(page, base, rel, set(results), stored)
                page.close()
                mine = stored + found
                problems += [(name, p) for p in mine]
                print(f'{"FAIL" if mine else "ok  "} {name}: {len(mine)} problem(s), {n_images} output image(s)')
                for p in mine: print(f'  {name}: {p}')
                for n in notes: print(f'  {name}: note: {n}')
                if n_images and rel != 'index.html' and plot_page is None: plot_page = rel
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                page = browser.new_page(viewport={'width': 1280, 'height': 900})
                if 'index.html' in results: screenshot(page, base, 'index.html', args.screenshots/'index.png')
                for name in filter(None, args.shoot.split(',')):
                    if f'{name}.html' in results: screenshot(page, base, f'{name}.html', args.screenshots/f'{name}.png')
                    else: problems.append((f'{name}.ipynb', 'asked for a screenshot, but there is no such page'))
                if plot_page: screenshot(page, base, plot_page, args.screenshots/(Path(plot_page).stem + '.png'), plot=True)
                else: print('note: no lesson page has a plot to screenshot')
                print(f'screenshots saved to {args.screenshots}')
        finally:
            browser.close()
            server.shutdown()

    for name, p in problems:
        if not any(name == r[0] for r in results.values()): print(f'  {name}: {p}')
    print(f'site check: {len(results)} pages, {len(problems)} problems ({time.time() - STARTED:.1f}s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
