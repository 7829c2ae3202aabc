"""Every relative link in the hand-written Markdown (README.md, docs/, and the READMEs and pages of
configs/ and projects/) leads somewhere: the file exists, and a ``#fragment`` names a heading of
that file (GitHub's heading anchors)."""
import glob
import os.path as osp
import re
from typing import Dict, List, Set, Tuple

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: ``[text](target)`` and ``![alt](target)``; the target stops at a space (a link title follows)
LINK = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
FENCE = re.compile(r'^\s*(```|~~~)')
INLINE_CODE = re.compile(r'`[^`]*`')


def markdown_files() -> List[str]:
    files = [osp.join(REPO_ROOT, 'README.md')]
    for folder in ('docs', 'configs', 'projects'):
        files += sorted(glob.glob(osp.join(REPO_ROOT, folder, '**', '*.md'), recursive=True))
    return files


def prose_lines(text: str) -> List[Tuple[int, str]]:
    """``(line number, line)`` outside fenced code blocks, inline code removed."""
    lines, in_fence = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append((number, INLINE_CODE.sub('', line)))
    return lines


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r'`', '', heading.strip().lower())
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path: str, cache: Dict[str, Set[str]]) -> Set[str]:
    """Every heading anchor of the Markdown file ``path`` (repeated headings get ``-1``, ...)."""
    if path not in cache:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        found, seen = set(), {}
        in_fence = False
        for line in text.splitlines():
            if FENCE.match(line):
                in_fence = not in_fence
                continue
            heading = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
            if in_fence or heading is None:
                continue
            anchor = github_anchor(heading.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            found.add(anchor if count == 0 else f'{anchor}-{count}')
        cache[path] = found
    return cache[path]


def broken_links(path: str, cache: Dict[str, Set[str]]) -> List[str]:
    """``'FILE:LINE: target (why)'`` for each relative link of ``path`` that leads nowhere."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    broken = []
    for number, line in prose_lines(text):
        for target in LINK.findall(line):
            if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.IGNORECASE):  # http:, mailto:
                continue
            file_part, _, fragment = target.partition('#')
            dest = path if not file_part else osp.normpath(
                osp.join(osp.dirname(path), file_part))
            where = f'{osp.relpath(path, REPO_ROOT)}:{number}: {target}'
            if not osp.exists(dest):
                broken.append(f'{where} (no such file: {osp.relpath(dest, REPO_ROOT)})')
            elif fragment and dest.endswith('.md') and fragment not in anchors(dest, cache):
                broken.append(f'{where} (no heading with that anchor)')
    return broken


def test_every_relative_link_resolves():
    cache: Dict[str, Set[str]] = {}
    broken = [b for path in markdown_files() for b in broken_links(path, cache)]
    assert not broken, 'broken links:\n' + '\n'.join(broken)


def test_docs_are_a_tree():
    """No page sits loose in docs/ besides the model zoo and the changelog."""
    loose = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO_ROOT, 'docs', '*.md')))
    assert set(loose) <= {'model_zoo.md', 'changelog.md'}, loose


@pytest.mark.parametrize('heading,anchor', [
    ('What is read from an `.onnx` file, and how it is checked',
     'what-is-read-from-an-onnx-file-and-how-it-is-checked'),
    ('Students: which RPN heads', 'students-which-rpn-heads'),
    ('1. Convert the release', '1-convert-the-release'),
])
def test_github_anchor(heading, anchor):
    assert github_anchor(heading) == anchor


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / 'page.md'
    (tmp_path / 'there.md').write_text('# Here it is\n')
    page.write_text('[ok](there.md#here-it-is) [web](https://example.org/x)\n'
                    '[gone](missing.md) [bad anchor](there.md#nowhere)\n'
                    '```\n[in code](also-missing.md)\n```\n')
    broken = broken_links(str(page), {})
    assert len(broken) == 2, broken
    assert 'missing.md (no such file' in broken[0] and 'there.md#nowhere' in broken[1]
