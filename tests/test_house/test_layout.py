"""The house rules of issue 26, checked on the tree: no ``sys.path`` manipulation, thin tools,
no oversized library module, no import cycle, the library never imports the study wing, and no
tool or benchmark imports another script."""
import ast
import os.path as osp
import subprocess

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
#: tools/ files are thin CLIs
TOOL_MAX_LINES = 150
#: library modules; the Caltech toolbox transcription keeps its one-to-one shape
MODULE_MAX_LINES = 600
LONG_MODULE_ALLOWED = {'mmmimic/evaluation/functional/caltech_eval.py'}


def _tracked_py(*dirs):
    out = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard', '--',
                          *dirs], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return sorted(p for p in out.split() if p.endswith('.py') and osp.isfile(osp.join(ROOT, p)))


def _lines(path):
    with open(osp.join(ROOT, path), encoding='utf-8') as f:
        return sum(1 for _ in f)


def _tree(path):
    with open(osp.join(ROOT, path), encoding='utf-8') as f:
        return ast.parse(f.read(), filename=path)


def test_no_sys_path_manipulation_anywhere():
    bad = []
    for path in _tracked_py('.'):
        for node in ast.walk(_tree(path)):
            # sys.path.insert(...) / .append / .extend / sys.path[...] = / sys.path += ...
            if isinstance(node, ast.Attribute) and node.attr == 'path' and \
                    isinstance(node.value, ast.Name) and node.value.id == 'sys':
                bad.append(f'{path}:{node.lineno}')
    assert bad == [], f'sys.path used at {bad}'


def test_the_check_above_can_fail(tmp_path):
    tree = ast.parse('import sys\nsys.path.insert(0, "x")\n')
    assert any(isinstance(n, ast.Attribute) and n.attr == 'path' for n in ast.walk(tree))


def test_tools_are_thin_clis():
    sizes = {p: _lines(p) for p in _tracked_py('tools')}
    assert sizes, 'no tools found'
    assert {p: n for p, n in sizes.items() if n > TOOL_MAX_LINES} == {}


def test_no_oversized_library_module():
    sizes = {p: _lines(p) for p in _tracked_py('mmmimic')}
    assert {p: n for p, n in sizes.items()
            if n > MODULE_MAX_LINES and p not in LONG_MODULE_ALLOWED} == {}


def _imported_names(tree, module, is_pkg, modules_have=lambda name: False):
    """Absolute names of the module-level imports of ``tree`` (not those inside functions)."""
    names, stack = [], list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.If, ast.Try)):
            stack += node.body + node.orelse + getattr(node, 'finalbody', [])
            stack += [s for h in getattr(node, 'handlers', []) for s in h.body]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            src = node.module or ''
            if node.level:
                base = module.split('.') if is_pkg else module.split('.')[:-1]
                base = base[:len(base) - node.level + 1]
                src = '.'.join(base + ([node.module] if node.module else []))
            # ``from pkg import module`` imports the module; ``from pkg import name`` the package
            names += [f'{src}.{a.name}' for a in node.names]
            names += [src] if any(not modules_have(f'{src}.{a.name}') for a in node.names) else []
    return names


def _package_graph():
    modules = {}
    for path in _tracked_py('mmmimic'):
        name = path[:-3].replace('/', '.')
        modules[name[:-9] if name.endswith('.__init__') else name] = path
    return {m: {n for n in _imported_names(_tree(p), m, p.endswith('__init__.py'),
                                           modules.__contains__)
                if n in modules and n != m} for m, p in modules.items()}


def _cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_no_import_cycles_in_the_library():
    edges = _package_graph()
    assert len(edges) > 50
    assert _cycles(edges) == []


def test_library_never_imports_the_study_wing():
    bad = [(p, n) for p in _tracked_py('mmmimic')
           for n in _imported_names(_tree(p), 'mmmimic.x', False)
           if n == 'projects' or n.startswith('projects.')]
    # imports inside functions count too
    bad += [(p, node.lineno) for p in _tracked_py('mmmimic') for node in ast.walk(_tree(p))
            if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('projects')]
    assert bad == []


@pytest.mark.parametrize('folder', ['tools', 'benchmarks'])
def test_no_tool_or_benchmark_imports_another_script(folder):
    # the script folders, and every script's own name (``import mimic_demo`` after a path hack)
    scripts = {'tools', 'benchmarks'} | {
        osp.splitext(osp.basename(p))[0] for p in _tracked_py('tools', 'benchmarks')}
    bad = []
    for path in _tracked_py(folder):
        for node in ast.walk(_tree(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or '']
            elif isinstance(node, ast.ImportFrom) and node.level:
                names = ['<relative>']
            bad += [f'{path}:{node.lineno} {n}' for n in names
                    if n.split('.')[0] in scripts | {'runpy', '<relative>'}]
            if isinstance(node, ast.Attribute) and node.attr in ('spec_from_file_location',
                                                                 'run_path'):
                bad.append(f'{path}:{node.lineno} {node.attr}')
    assert bad == []
