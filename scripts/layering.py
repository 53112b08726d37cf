#!/usr/bin/env python3
"""The crate's layering, as the picture at the top of `src/lib.rs` states it, checked.

    python3 scripts/layering.py

Each top-level part of `src/` may use only the parts listed for it below (and itself). A use
is a path `crate::part` in code (comments and doc links are not uses), or a name `crate::Name`
re-exported at the crate's root, which counts as a use of the part it comes from. Prints each
use against the picture with its file and line, and exits with status 1 if there is one.
"""

import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"

# The picture: config builds model, layer evaluates with model, reload is the glue that puts
# rule sets in force in layers, the feeds hand rules to the glue.
ALLOWED = {
    "model": set(),
    "config": {"model"},
    "layer": {"model"},
    "reload": {"config", "layer", "model"},
    "feed": {"config", "model", "reload"},
    "lib": None,  # the root re-exports everything
}


def part_of(path):
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def root_names():
    """Names re-exported at the root (`pub use part::{A, B}`), with their part."""
    text = (SRC / "lib.rs").read_text(encoding="utf-8")
    names = {}
    for part, body in re.findall(r"pub use (\w+)(?:::\w+)*::\{([^}]*)\}", text):
        for name in re.findall(r"\w+", body):
            names[name] = part
    for part, name in re.findall(r"pub use (\w+)::(\w+);", text):
        names[name] = part
    return names


def uses(line, names):
    """The parts a line of code uses through `crate::`."""
    found = set()
    for group in re.findall(r"crate::\{([^}]*)\}", line):
        for first in re.findall(r"(?:^|,)\s*(\w+)", group):
            found.add(names.get(first, first))
    for first in re.findall(r"crate::(\w+)", line):
        found.add(names.get(first, first))
    return found


def main():
    names = root_names()
    parts = set(ALLOWED) - {"lib"}
    problems = []
    for path in sorted(SRC.rglob("*.rs")):
        part = part_of(path)
        allowed = ALLOWED.get(part, set())
        if allowed is None:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("//", 1)[0]
            for used in sorted(uses(code, names) & parts):
                if used != part and used not in allowed:
                    rel = path.relative_to(SRC.parent)
                    problems.append(f"{rel}:{n}: {part} uses {used}: {line.strip()}")
    if problems:
        print("uses against the layering of src/lib.rs:")
        print("\n".join(problems))
        sys.exit(1)
    print("the layering of src/lib.rs holds: every part uses only the parts below it")


if __name__ == "__main__":
    main()
