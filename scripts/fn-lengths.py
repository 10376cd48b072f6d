#!/usr/bin/env python3
"""Lists Rust functions by length (lines from `fn` to its closing brace), longest first.
Works on rustfmt-formatted code: a function ends at the first line, after its signature,
that is a closing brace at the indentation of its `fn` line.
    scripts/fn-lengths.py [--top N] [--min L] PATH...
"""
import os, re, sys

FN = re.compile(r'^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+"[^"]*"\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)')

def functions(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    out = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        indent, name = m.group(1), m.group(2)
        # a declaration without a body (trait method) ends with `;` before any `{`
        j = i
        while j < len(lines) and '{' not in lines[j] and not lines[j].rstrip().endswith(';'):
            j += 1
        if j >= len(lines) or ('{' not in lines[j]):
            continue
        if lines[j].rstrip().endswith('}') and lines[j].count('{') == lines[j].count('}'):
            out.append((1 + j - i, name, path, i + 1))
            continue
        k = j + 1
        while k < len(lines) and lines[k] != indent + '}':
            k += 1
        out.append((k - i + 1, name, path, i + 1))
    return out

def main(argv):
    top, minimum, paths = 20, 0, []
    it = iter(argv)
    for a in it:
        if a == '--top': top = int(next(it))
        elif a == '--min': minimum = int(next(it))
        else: paths.append(a)
    found = []
    for p in paths:
        for root, dirs, files in os.walk(p):
            dirs[:] = [d for d in dirs if d not in ('target', 'node_modules', '.git', 'fuzz')]
            for f in files:
                if f.endswith('.rs'):
                    found += functions(os.path.join(root, f))
    found.sort(reverse=True)
    for n, name, path, line in [f for f in found if f[0] >= minimum][:top]:
        print(f"{n:5d}  {name}  {path}:{line}")

if __name__ == '__main__':
    main(sys.argv[1:])
