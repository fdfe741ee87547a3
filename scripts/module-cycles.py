#!/usr/bin/env python3
"""Module dependency cycles in engine/src: every `crate::a::b` path a file names is an edge
from its module to the longest module that exists; prints each strongly connected component
of more than one module (parent ↔ child through `super` is not counted). Exit 1 if any."""
import os, re, sys
root = os.path.join(os.path.dirname(__file__), '..', 'engine', 'src')
mods = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs') or f.endswith('_tests.rs') or f == 'lib.rs':
            continue
        rel = os.path.relpath(os.path.join(d, f), root)[:-3].split(os.sep)
        if rel[-1] == 'mod':
            rel = rel[:-1]
        mods['::'.join(rel)] = os.path.join(d, f)
def target(path):
    parts = path.split('::')
    for n in range(len(parts), 0, -1):
        if '::'.join(parts[:n]) in mods:
            return '::'.join(parts[:n])
edges = {m: set() for m in mods}
for m, f in mods.items():
    text = open(f, encoding='utf-8').read()
    text = text.split('#[cfg(test)]')[0]  # test modules may reach anywhere
    for g in re.findall(r'crate::((?:[a-z_0-9]+::)*[a-z_0-9]+)', text):
        t = target(g)
        if t and t != m and not t.startswith(m + '::') and not m.startswith(t + '::'):
            edges[m].add(t)
    for grp in re.findall(r'crate::((?:[a-z_0-9]+::)+)\{([^}]*)\}', text):
        for item in grp[1].split(','):
            t = target(grp[0] + item.strip().split('::')[0])
            if t and t != m and not t.startswith(m + '::') and not m.startswith(t + '::'):
                edges[m].add(t)
index, low, stack, on, comps, i = {}, {}, [], set(), [], [0]
def sc(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            sc(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: comps.append(sorted(c))
sys.setrecursionlimit(10000)
for v in mods:
    if v not in index: sc(v)
for c in comps:
    print('cycle:', ' ↔ '.join(c))
print(f'{len(mods)} modules, {sum(map(len, edges.values()))} edges, {len(comps)} cycles')
sys.exit(1 if comps else 0)
