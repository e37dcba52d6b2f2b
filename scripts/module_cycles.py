#!/usr/bin/env python3
"""Fails when two modules of src/ import each other, directly or round a loop.

For every pair of sibling modules (children of one parent, at any depth) an
edge A -> B means code under A names something under B (`use crate::…`,
`super::…`, or a path in code). Test code (`tests.rs`, `#[cfg(test)] mod
tests`) is left out: tests may reach anywhere. `core` and `config` must be
leaves (see LEAVES). A parent's own file (mod.rs)
re-exporting or calling its children is not a sibling edge. A name a
module re-exports (`pub use child::Item`) counts as the module it comes
from, so importing it through the parent still makes an edge to that child.
What it cannot see: a method called on a value (`x.f()`) names no module,
so a dependency that exists only through such calls goes unseen; the types
they need are imported, and those imports are seen. Prints every cycle found
and exits 1, or prints the layering and exits 0.

Usage: scripts/module_cycles.py [src-dir]
       scripts/module_cycles.py --self-test   (shows the check can fail)
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(__file__), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


CHAR_LITERAL = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'\n])'")
RAW_STRING = re.compile(r'b?r(#*)"')


def code_only(text):
    """The text with comments removed and string and char literals emptied,
    read left to right as the compiler does (a `//` inside a string is no
    comment, a quote inside a comment no string)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif (raw := RAW_STRING.match(text, i)) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find('"' + raw.group(1), raw.end())
            out.append('""')
            i = n if end < 0 else end + 1 + len(raw.group(1))
        elif text[i] == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif text[i] == "'" and (char := CHAR_LITERAL.match(text, i)):
            out.append("''")
            i = char.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def strip_tests(text):
    """The code that names modules: no literals, comments or test modules."""
    text = code_only(text)
    # Each `#[cfg(test)] mod x { … }` goes, up to its closing brace; code
    # after it stays.
    while True:
        match = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
        if not match:
            return text
        depth, end = 0, len(text)
        for i in range(match.end() - 1, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        text = text[: match.start()] + text[end:]


def expand_use(tree):
    """`a::{b, c::{d, e as f}}` -> [a::b, a::c::d, a::c::e@f] (a rename
    kept after `@`)"""
    tree = re.sub(r"\s+as\s+", "@", tree.strip())
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1 : i], tree[i + 1 :]
                parts, level, last = [], 0, 0
                for j, c in enumerate(inner):
                    if c == "{":
                        level += 1
                    elif c == "}":
                        level -= 1
                    elif c == "," and level == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                out = []
                for part in parts:
                    if part:
                        out.extend(expand_use(prefix + part + rest))
                return out
    return [tree]


def resolve(module, path):
    """A path as written in `module` -> absolute module path (tuple) or None."""
    segments = path.split("::")
    if segments[0] == "crate":
        base, segments = (), segments[1:]
    elif segments[0] in ("super", "self"):
        base = module
        while segments and segments[0] in ("super", "self"):
            if segments[0] == "super":
                base = base[:-1]
            segments = segments[1:]
    else:
        return None
    return base + tuple(s for s in segments if s)


# The bottom of the crate, and what each may import: core nothing, config
# only core (a domain in the config is checked as the relay reads it).
LEAVES = {"core": set(), "config": {"core"}}


def main():
    modules = {}
    for root, _dirs, files in os.walk(SRC):
        for name in files:
            # main.rs is the binary: a crate of its own over the library.
            if name.endswith(".rs") and name not in ("tests.rs", "main.rs"):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    modules[module_of(path)] = strip_tests(f.read())
    known = set(modules)
    for module in list(known):
        for i in range(len(module)):
            known.add(module[:i])
    reexports, globs = {}, {}
    for module, text in modules.items():
        for use in re.findall(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
            for path in expand_use(use):
                path, _, rename = path.partition("@")
                name = rename or path.split("::")[-1]
                if path.startswith(("crate::", "super::", "self::")):
                    target = resolve(module, path)
                else:
                    target = module + tuple(path.split("::"))
                if not target or name == "self":
                    continue
                if name == "*":
                    globs.setdefault(module, []).append(target[:-1])
                else:
                    reexports[module + (name,)] = target
    edges = set()
    for module, text in modules.items():
        paths = []
        for use in re.findall(r"\buse\s+([^;]+);", text):
            paths.extend(expand_use(use))
        paths.extend(re.findall(r"\b(?:crate|super)(?:::\w+)+", text))
        for path in paths:
            target = resolve(module, path.partition("@")[0])
            if target is None:
                continue
            target = through_reexports(target, known, reexports, globs, modules)
            # Where the two part: the first segment that differs.
            common = 0
            while common < min(len(module), len(target)) and module[common] == target[common]:
                common += 1
            if common == len(module) or common == len(target):
                continue  # a module and its own ancestor or descendant
            parent = module[:common]
            edges.add((parent, module[common], target[common]))
    by_parent = {}
    for parent, a, b in edges:
        by_parent.setdefault(parent, {}).setdefault(a, set()).add(b)
    cycles = []
    for parent, graph in sorted(by_parent.items()):
        for component in find_cycles(graph):
            inside = [
                f"{a} -> {b}"
                for a in component
                for b in sorted(graph.get(a, ()))
                if b in component
            ]
            cycles.append("::".join(("crate",) + parent) + ": " + ", ".join(inside))
    for leaf, allowed in sorted(LEAVES.items()):
        above = sorted(graph_targets(by_parent.get((), {}), leaf) - allowed)
        if above:
            cycles.append(f"crate::{leaf} is a leaf but imports {', '.join(above)}")
    if cycles:
        print("module cycles (a module imports one that imports it back) or leaves that import:")
        for cycle in cycles:
            print("  " + cycle)
        return 1
    print(f"no module cycles: {len(modules)} files, {len(edges)} sibling edges")
    return 0


def through_reexports(target, known, reexports, globs, modules):
    """The longest known module a path names, following `pub use` of the
    item it names, renamed or by glob (a few hops: a re-export of a
    re-export)."""
    module = target
    for _ in range(8):
        module = target
        while module and module not in known:
            module = module[:-1]
        if len(target) == len(module):
            return module
        item = target[len(module)]
        origin = reexports.get(module + (item,))
        if origin is None:
            origin = glob_origin(module, item, globs, modules)
        if origin is None or origin[:-1] == module and origin[-1] == item:
            return module
        target = origin + target[len(module) + 1 :]
    return module


def glob_origin(module, item, globs, modules):
    """`item` re-exported by `pub use source::*` in `module`: the module
    among the glob's sources that defines it."""
    for source in globs.get(module, ()):
        text = modules.get(source, "")
        if re.search(r"\bpub(?:\([^)]*\))?\s+(?:async\s+)?(?:fn|struct|enum|trait|type|const|static|mod|use)\b[^;{]*\b%s\b" % re.escape(item), text):
            return source + (item,)
    return None


def graph_targets(graph, module):
    return set(graph.get(module, ()))


def find_cycles(graph):
    """One representative cycle per strongly connected component (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def self_test():
    """Trees with a known fault must fail, a clean one must pass."""
    import contextlib
    import io
    import tempfile

    global SRC
    cases = {
        "a cycle of siblings": (
            {"lib.rs": "mod a; mod b;", "a.rs": "use crate::b::B;", "b/mod.rs": "use crate::a::A;"},
            1,
        ),
        "a cycle through a group import": (
            {"lib.rs": "", "x/mod.rs": "mod p; mod q;", "x/p.rs": "use super::{q::Q};",
             "x/q.rs": "fn f() { super::p::g() }"},
            1,
        ),
        "a leaf that imports": ({"lib.rs": "", "config/mod.rs": "use crate::smtp::X;", "smtp.rs": ""}, 1),
        "an import after a string with // in it": (
            {"lib.rs": "", "a.rs": 'const U: &str = "smtp://x"; use crate::b::B;', "b.rs": "use crate::a::A;"},
            1,
        ),
        "an import after a test module": (
            {"lib.rs": "", "a.rs": "#[cfg(test)]\nmod tests { fn t() { {} } }\nuse crate::b::B;",
             "b.rs": "use crate::a::A;"},
            1,
        ),
        "a quote in a comment hides nothing": (
            {"lib.rs": "", "a.rs": '// say "hi\nuse crate::b::B;\nfn f() { let c = \'"\'; }', "b.rs": "use crate::a::A;"},
            1,
        ),
        "a test module's imports do not count": (
            {"lib.rs": "", "a.rs": "#[cfg(test)]\nmod tests { use crate::b::B; }", "b.rs": "use crate::a::A;"},
            0,
        ),
        "a cycle through a parent's re-export": (
            {"lib.rs": "", "x/mod.rs": "mod p; mod q; pub use q::Q;", "x/p.rs": "use super::Q;",
             "x/q.rs": "use super::p::P;"},
            1,
        ),
        "a cycle through a renamed re-export": (
            {"lib.rs": "", "x/mod.rs": "mod p; mod q; pub use q::Q as R;", "x/p.rs": "use super::R;",
             "x/q.rs": "use super::p::P;"},
            1,
        ),
        "a cycle through a glob re-export": (
            {"lib.rs": "", "x/mod.rs": "mod p; mod q; pub use q::*;", "x/p.rs": "use super::Q;",
             "x/q.rs": "use super::p::P; pub struct Q;"},
            1,
        ),
        "a renamed import still counts": (
            {"lib.rs": "", "a.rs": "use crate::b as other;", "b.rs": "use crate::a::A;"},
            1,
        ),
        "a re-export of a crate outside is no edge": (
            {"lib.rs": "", "x/mod.rs": "mod p; mod q; pub use serde::Serialize;",
             "x/p.rs": "use super::Serialize;", "x/q.rs": "use super::p::P;"},
            0,
        ),
        "one way": ({"lib.rs": "", "a.rs": "use crate::b::B;", "b.rs": "use crate::core::C;", "core.rs": ""}, 0),
    }
    for name, (files, expected) in cases.items():
        with tempfile.TemporaryDirectory() as tree:
            for path, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(tree, path)), exist_ok=True)
                with open(os.path.join(tree, path), "w", encoding="utf-8") as f:
                    f.write(text)
            SRC = tree
            with contextlib.redirect_stdout(io.StringIO()):
                got = main()
        if got != expected:
            print(f"self-test failed: {name}: exit {got}, expected {expected}")
            return 1
    print(f"self-test: {len(cases)} cases as expected")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    if sys.argv[1:]:
        SRC = sys.argv[1]
    sys.exit(main())
