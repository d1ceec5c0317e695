#!/usr/bin/env python3
"""Import cycles between the modules of each crate in the workspace.

Every `.rs` file under a crate's `src/` is a module (`a/b.rs` and `a/b/mod.rs` are `a::b`).
A module depends on another when its text names it by path: `crate::x::y`, `super::x`,
`self::x` (inside `use` lists too). Tests (`#[cfg(test)] mod tests` blocks and `tests/`
directories) are skipped: a test may reach anywhere. Dependencies are folded to the top
level of the crate (`target::rpc` depends on `target::config`) as well as kept per file,
and the strongly connected components of more than one node are the cycles.

Usage: module_cycles.py [--level top|file] [--baseline FILE] [--write-baseline FILE]
With --baseline, exits 1 when a cycle appears that the baseline does not list, or when a
listed cycle grew (new members), so cycles can only shrink.
"""
import argparse
import json
import os
import re
import sys

CRATES = {"protocol": "protocol/src", "lvol": "lvol/src", "target": "target/src",
          "integration": "integration/src"}


def modules(src):
    out = {}
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d not in ("tests",)]
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            if rel and rel[0] == "bin":
                continue
            out[tuple(rel)] = os.path.join(root, f)
    return out


TEST_BLOCK = re.compile(r"#\[cfg\((?:all\()?test[^\]]*\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+\w+\s*\{")


def strip_tests(text):
    """Removes `#[cfg(test)] mod x { ... }` blocks (brace matching on the raw text)."""
    while True:
        m = TEST_BLOCK.search(text)
        if not m:
            return text
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[:m.start()] + text[i:]


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::\w+)*)::\{([^;]*)\}", re.S)


def refs(mod, text, known):
    found = set()

    def resolve(head, tail):
        if head == "crate":
            base = []
        elif head == "self":
            base = list(mod)
        else:
            base = list(mod[:-1])
        parts = base + [p for p in tail.split("::") if p]
        # The longest prefix that is a module.
        for n in range(len(parts), 0, -1):
            if tuple(parts[:n]) in known:
                return tuple(parts[:n])
        return None

    for head, tail, group in USE_GROUP.findall(text):
        for item in re.split(r",", re.sub(r"\{[^{}]*\}", "", group)):
            item = item.strip().split(" as ")[0].strip()
            if item and item != "self":
                r = resolve(head, tail + "::" + item.split("::")[0] if item else tail)
                if r is not None:
                    found.add(r)
        r = resolve(head, tail)
        if r is not None:
            found.add(r)
    for head, tail in PATH.findall(text):
        r = resolve(head, tail)
        if r is not None:
            found.add(r)
    found.discard(mod)
    return found


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def cycles(level):
    found = []
    for crate, src in CRATES.items():
        mods = modules(src)
        graph = {}
        for mod, path in mods.items():
            with open(path, encoding="utf-8") as f:
                text = strip_comments(strip_tests(f.read()))
            deps = refs(mod, text, mods)
            if level == "top":
                node = mod[:1]
                deps = {d[:1] for d in deps} - {node, ()}
                if not node:
                    continue
            else:
                node = mod
                # A module naturally names its children and its parents (re-exports).
                deps = {d for d in deps if d[:len(node)] != node and node[:len(d)] != d}
            graph.setdefault(node, set()).update(deps)
        for comp in sccs(graph):
            found.append([crate + "::" + "::".join(m) for m in comp])
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--level", choices=["top", "file"], default="top")
    ap.add_argument("--baseline")
    ap.add_argument("--write-baseline")
    a = ap.parse_args()
    found = cycles(a.level)
    for c in found:
        print(f"cycle of {len(c)}: " + " -> ".join(c))
    if not found:
        print("no module cycles")
    if a.write_baseline:
        with open(a.write_baseline, "w", encoding="utf-8") as f:
            json.dump(found, f, indent=1)
            f.write("\n")
    if a.baseline:
        with open(a.baseline, encoding="utf-8") as f:
            allowed = [set(c) for c in json.load(f)]
        bad = [c for c in found if not any(set(c) <= b for b in allowed)]
        for c in bad:
            print("NEW or GROWN cycle: " + " -> ".join(c), file=sys.stderr)
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
