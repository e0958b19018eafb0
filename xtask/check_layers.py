#!/usr/bin/env python3
"""Checks that the modules of a crate form layers: no file imports a file that (transitively)
imports it. Prints the layers (a module's layer is one above the highest module it uses), or
each loop with its edges and exits 1.

Usage: python3 xtask/check_layers.py [SRC_DIR] [-v]     (default shared/src; -v prints edges)
(cargo xtask test runs it on shared/src and rater/src.)

An edge A -> B is any path from file A to module B: `crate::b::...`, `super::b::...`,
`self::b::...` (in `use` items or inline, test modules left out) and, in a module with
children, a child named by a relative path (`text::read_document`) or declared (`mod text;`).
A child's `super::Item` names its parent. lib.rs, the facade that declares and re-exports
every module, is left out.
"""
import os
import re
import sys


def modules(src):
    """Module path (`import::text`) -> file."""
    out = {}
    for d, _, fs in os.walk(src):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                parts = os.path.relpath(p, src)[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib", "main"):
                    parts = parts[:-1]
                out["::".join(parts)] = p
    return out


def without_tests_and_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 0, m.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        i = j + 1
    out.append(text[i:])
    return "".join(out)


def edges(mods):
    def resolve(segs):
        for k in range(len(segs), 0, -1):
            if "::".join(segs[:k]) in mods:
                return "::".join(segs[:k])
        return None

    graph = {m: set() for m in mods if m}
    for mod in graph:
        text = without_tests_and_comments(open(mods[mod]).read())
        base = mod.split("::")
        for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+)", text):
            rest = [s for s in m.group(2).split("::") if s]
            head = {"crate": [], "super": base[:-1], "self": base}[m.group(1)]
            graph[mod].add(resolve(head + rest) or "::".join(head) or None)
        for m in re.finditer(r"\buse\s+(crate|super)::\{([^;]*)\};", text, re.S):
            head = [] if m.group(1) == "crate" else base[:-1]
            for name in re.findall(r"\b(\w+)\b", m.group(2)):
                graph[mod].add(resolve(head + [name]) or "::".join(head) or None)
        for child in mods:
            if child.startswith(mod + "::") and "::" not in child[len(mod) + 2 :]:
                name = child.split("::")[-1]
                if re.search(r"(?<![:\w])" + name + r"::", text) or re.search(
                    r"\bmod\s+" + name + r"\s*;", text
                ):
                    graph[mod].add(child)
        graph[mod] -= {None, mod}
    return graph


def loops(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    src = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "shared", "src")
    graph = edges(modules(src))
    if "-v" in sys.argv:
        for m in sorted(graph):
            print(f"{m} -> {', '.join(sorted(graph[m]))}")
    bad = loops(graph)
    for comp in bad:
        print("loop:", " <-> ".join(comp))
        for a in comp:
            for b in sorted(graph[a] & set(comp)):
                print(f"  {a} -> {b}")
    if bad:
        sys.exit(1)
    layer = {}

    def depth(v):
        if v not in layer:
            layer[v] = 1 + max((depth(w) for w in graph[v]), default=-1)
        return layer[v]

    for v in graph:
        depth(v)
    for n in sorted(set(layer.values())):
        print(f"layer {n}: {', '.join(sorted(m for m in layer if layer[m] == n))}")
    print(f"{len(graph)} modules, no loops")


if __name__ == "__main__":
    main()
