#!/usr/bin/env python3
"""Lists what outgrows the layout's sizes: files in src/ over 400 lines
(their own code, without inline `#[cfg(test)] mod tests { … }`) and
functions over 80 lines. A function may exceed them when a comment starting
`// size:` in it says why, a file when a `//! size:` line does. Exits 1 if
anything is listed, or if no Rust file was found.

Usage: scripts/sizes.py [src-dir]
       scripts/sizes.py --self-test   (shows the check can fail)
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(__file__), "..", "src")
MAX_FILE, MAX_FN = 400, 80
FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def code_lines(lines):
    """The lines without inline test modules (tests are not code to size);
    code after such a module still counts."""
    out, i = [], 0
    while i < len(lines):
        if lines[i].startswith("#[cfg(test)]") and i + 1 < len(lines) and re.match(r"\s*mod\s+\w+\s*\{", lines[i + 1]):
            depth, j = 0, i + 1
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                if depth <= 0 and "{" in "".join(lines[i + 1 : j + 1]):
                    break
                j += 1
            i = j + 1
            continue
        out.append(lines[i])
        i += 1
    return out


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
    found, read = [], 0
    for root, _dirs, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith(".rs") or name == "tests.rs":
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                lines = code_lines(f.read().split("\n"))
            read += 1
            rel = os.path.relpath(path, os.path.join(src, ".."))
            if len(lines) > MAX_FILE and not any(l.startswith("//! size:") for l in lines):
                found.append(f"{rel}: {len(lines)} lines of code (over {MAX_FILE})")
            for fn, line, length in long_functions(lines):
                found.append(f"{rel}:{line}: fn {fn} is {length} lines (over {MAX_FN})")
    if read == 0:
        print(f"sizes: no Rust file under {src}")
        return 1
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} over the sizes; split them or say why with a `// size:` comment")
        return 1
    print("sizes: every file and function within bounds")
    return 0


def self_test():
    """Trees over the sizes must fail, within them (or excused) pass."""
    import contextlib
    import io
    import tempfile

    long_fn = "fn f() {\n" + "    x();\n" * 80 + "}\n"
    cases = {
        "a long file": ({"a.rs": "// line\n" * 401}, 1),
        "a long function": ({"a.rs": long_fn}, 1),
        "a long method": ({"a.rs": "impl A {\n    fn f() {\n" + "        x();\n" * 80 + "    }\n}\n"}, 1),
        "an excused function": ({"a.rs": long_fn.replace("{\n", "{\n    // size: a table\n", 1)}, 0),
        "a long test module": ({"a.rs": "fn f() {}\n#[cfg(test)]\nmod tests {\n" + "//\n" * 500 + "}\n"}, 0),
        "a long function after a test module": (
            {"a.rs": "#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n" + long_fn}, 1),
        "a function's excuse does not excuse its file": (
            {"a.rs": long_fn.replace("{\n", "{\n    // size: a table\n", 1) + "// line\n" * 400}, 1),
        "no source at all": ({"README": "none"}, 1),
        "a trait's declarations": ({"a.rs": "trait T {\n    fn f(\n" + "        a: u8,\n" * 90 + "    );\n    fn g() {}\n}\n"}, 0),
    }
    for name, (files, expected) in cases.items():
        with tempfile.TemporaryDirectory() as tree:
            for path, text in files.items():
                with open(os.path.join(tree, path), "w", encoding="utf-8") as f:
                    f.write(text)
            with contextlib.redirect_stdout(io.StringIO()):
                got = main(tree)
        if got != expected:
            print(f"self-test failed: {name}: exit {got}, expected {expected}")
            return 1
    print(f"self-test: {len(cases)} cases as expected")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else SRC))
