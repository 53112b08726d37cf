#!/usr/bin/env python3
"""Import circles among the files of each module folder under `src/`.

    python3 scripts/module_cycles.py

A file uses another of its folder when it names `super::other` (or `crate::<folder>::other`).
Prints each group of files that use one another in a circle, with the uses inside the group,
and exits with status 1 if there is one. Uses from test modules count too: a circle there is
still a circle to read.
"""

import pathlib
import re
import sys


def uses(folder):
    files = {p.stem: p.read_text(encoding="utf-8") for p in folder.glob("*.rs")}
    graph = {}
    for name, text in files.items():
        named = set(re.findall(r"super::(\w+)", text))
        named |= set(re.findall(rf"crate::{folder.name}::(\w+)", text))
        graph[name] = {n for n in named if n in files and n != name}
    return graph


def circles(graph):
    """Strongly connected groups of more than one file (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    bad = False
    for folder in sorted(p for p in pathlib.Path("src").rglob("*") if p.is_dir()):
        graph = uses(folder)
        for group in circles(graph):
            bad = True
            print(f"{folder}: {', '.join(group)}")
            for name in group:
                print(f"  {name} uses {', '.join(sorted(graph[name] & set(group)))}")
    if not bad:
        print("no import circles among the files of a module")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
