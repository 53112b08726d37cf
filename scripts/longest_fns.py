#!/usr/bin/env python3
"""The longest Rust functions in a folder, longest first.

    python3 scripts/longest_fns.py [FOLDER] [--top N] [--max LINES]

Prints `LINES FILE:LINE NAME` for the N longest functions (default 10) below FOLDER (default
`src`), counting from the line of `fn` to the line of its closing brace. With `--max`, exits
with status 1 when a function is longer than LINES, so CI can hold the line.

It reads the text, not the syntax tree: braces inside strings, characters and comments are
skipped, which is enough for this crate's code.
"""

import argparse
import pathlib
import re
import sys

FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+|async\s+|unsafe\s+|extern\s+\"[^\"]*\"\s+)*fn\s+(\w+)")


def code_only(line, in_block):
    """The line without strings, character literals and comments; and whether a block comment
    is still open at its end."""
    out = []
    i = 0
    while i < len(line):
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            i, in_block = end + 2, False
            continue
        two = line[i : i + 2]
        if two == "//":
            break
        if two == "/*":
            in_block, i = True, i + 2
            continue
        c = line[i]
        if c == '"':
            i += 1
            while i < len(line) and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
            continue
        if c == "'" and re.match(r"'(\\.|[^\\'])'", line[i:]):
            i += len(re.match(r"'(\\.|[^\\'])+'", line[i:]).group(0))
            continue
        out.append(c)
        i += 1
    return "".join(out), in_block


def functions(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    code, in_block = [], False
    for line in lines:
        text, in_block = code_only(line, in_block)
        code.append(text)
    for start, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for end in range(start, len(code)):
            text = code[end]
            if not opened and ";" in text and "{" not in text:
                break  # a declaration without a body (trait method)
            depth += text.count("{") - text.count("}")
            opened = opened or "{" in text
            if opened and depth <= 0:
                yield end - start + 1, start + 1, m.group(1)
                break


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="src")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--max", type=int)
    args = parser.parse_args()
    found = []
    for path in sorted(pathlib.Path(args.folder).rglob("*.rs")):
        for length, line, name in functions(path):
            found.append((length, f"{path}:{line}", name))
    found.sort(key=lambda f: -f[0])
    for length, place, name in found[: args.top]:
        print(length, place, name)
    if args.max is not None and found and found[0][0] > args.max:
        print(f"the longest function has {found[0][0]} lines; at most {args.max} are allowed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
