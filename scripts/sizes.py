#!/usr/bin/env python3
"""Lists what outgrows the layout's sizes: files in src/ over 400 lines
(their own code, without a trailing `#[cfg(test)] mod tests { … }`) and
functions over 80 lines. A file or function may exceed them when a comment
starting `// size:` in it says why. Exits 1 if anything is listed.

Usage: scripts/sizes.py [src-dir]
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(__file__), "..", "src")
MAX_FILE, MAX_FN = 400, 80
FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def code_lines(lines):
    """Lines before an inline test module (test files are tests, not code)."""
    for i, line in enumerate(lines):
        if line.startswith("#[cfg(test)]") and i + 1 < len(lines) and "mod tests {" in lines[i + 1]:
            return lines[:i]
    return lines


def is_declaration(lines, start):
    """A signature that ends in `;` before any body opens (a trait's)."""
    for line in lines[start:]:
        if "{" in line:
            return False
        if line.rstrip().endswith(";"):
            return True
    return True


def long_functions(lines):
    for i, line in enumerate(lines):
        match = FN.match(line)
        if not match or is_declaration(lines, i):
            continue
        indent = match.group(1)
        for j in range(i, len(lines)):
            closing = lines[j].rstrip()
            if closing == indent + "}" or (j == i and closing.endswith("}")):
                length = j - i + 1
                body = lines[i : j + 1]
                if length > MAX_FN and not any("// size:" in l for l in body):
                    yield match.group(2), i + 1, length
                break


def main(src):
    found = []
    for root, _dirs, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith(".rs") or name == "tests.rs":
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                lines = code_lines(f.read().split("\n"))
            rel = os.path.relpath(path, os.path.join(src, ".."))
            if len(lines) > MAX_FILE and not any(l.startswith("//! size:") or "// size:" in l for l in lines):
                found.append(f"{rel}: {len(lines)} lines of code (over {MAX_FILE})")
            for fn, line, length in long_functions(lines):
                found.append(f"{rel}:{line}: fn {fn} is {length} lines (over {MAX_FN})")
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} over the sizes; split them or say why with a `// size:` comment")
        return 1
    print("sizes: every file and function within bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else SRC))
