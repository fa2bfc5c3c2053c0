#!/usr/bin/env python3
"""Fail if the modules of a crate depend on each other in a cycle.

An edge A -> B is drawn when a file of top-level module A names crate::B
(test modules left out: they may reach anywhere). Within one top-level
module, its second-level modules are nodes too (api::cases, client::flows),
joined by `super::X` and `crate::A::X` paths. Cycles are the strongly
connected components of more than one node (Tarjan's algorithm).

Usage: module-cycles.py SRC_DIR...   (exit 1 and print each cycle)
"""
import os
import re
import sys


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    return rel


def graph_of(root):
    graph = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs") or f == "tests.rs":
                continue
            path = os.path.join(dirpath, f)
            mod = module_of(root, path)
            if mod in (["lib"], ["main"]) or "tests" in mod:
                continue
            src = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
            top = mod[0]
            here = "::".join(mod[:2])
            for m in re.finditer(r"crate::([a-z_]+)(?:::([a-z_]+))?", src):
                target, sub = m.group(1), m.group(2)
                if target == top and sub and len(mod) > 1:
                    graph.setdefault(here, set()).add(f"{top}::{sub}")
                elif target != top:
                    graph.setdefault(top, set()).add(target)
            if len(mod) == 2:
                for m in re.finditer(r"super::([a-z_]+)", src):
                    graph.setdefault(here, set()).add(f"{top}::{m.group(1)}")
    return graph


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    found = 0
    for root in sys.argv[1:]:
        for c in cycles(graph_of(root)):
            print(f"{root}: modules in a cycle: {' <-> '.join(c)}")
            found += 1
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
