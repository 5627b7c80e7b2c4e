#!/usr/bin/env python3
"""The folders of Sources/AlertdKit are its layers (docs/architecture.md): a type defined in one
folder and named in another makes an edge from the second to the first. Prints the edges, and
fails on any cycle between folders.

    python3 deploy/dev/check-layers.py [Sources/AlertdKit]
"""
import os, re, sys, itertools
root = sys.argv[1] if len(sys.argv) > 1 else "Sources/AlertdKit"
defs = {}
files = {}
for dirpath, _, names in os.walk(root):
    for name in names:
        if not name.endswith(".swift"): continue
        path = os.path.join(dirpath, name)
        folder = os.path.relpath(dirpath, root).split(os.sep)[0]
        text = open(path).read()
        text_nc = re.sub(r'//.*', '', text)
        files[path] = (folder, text_nc)
        for m in re.finditer(r'^(?:public |internal |private |fileprivate |final |@\w+ )*(?:struct|enum|class|actor|protocol|typealias)\s+(\w+)', text_nc, re.M):
            defs.setdefault(m.group(1), folder)
edges = {}
for path, (folder, text) in files.items():
    for word in set(re.findall(r'\b([A-Z]\w+)\b', text)):
        target = defs.get(word)
        if target and target != folder:
            edges.setdefault((folder, target), set()).add(f"{word} ({os.path.basename(path)})")
graph = {}
for (a, b) in edges: graph.setdefault(a, set()).add(b)
for (a, b), why in sorted(edges.items()):
    print(f"{a} -> {b}: {', '.join(sorted(why)[:4])}")
# cycles: strongly connected components
index = {}; low = {}; stack = []; on = set(); sccs = []; counter = [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in graph.get(v, ()):
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
for v in list(graph): 
    if v not in index: strong(v)
for comp in sccs: print("CYCLE:", " <-> ".join(sorted(comp)))
sys.exit(1 if sccs else 0)
