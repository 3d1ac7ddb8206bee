#!/usr/bin/python3
"""No second list of the models: the registry (servers/models.cc) is the only place naming them all.

Reads the model names from the binary (`serve --list-models`), then scans every file of the
checkout (git's tracked files and its untracked ones that are not ignored, so build/ and results/
stay out) for a list of models written by hand, three distinct model names:
  - in code and configuration, within eight lines: an array, a list one name a line (YAML), a
    chain of ifs;
  - in Markdown, one after the other with nothing but punctuation, digits, "and" or "or" between
    them ("`a`, `b` and `c`", "a 1, b 2, c 3", a one-column table), so that prose and tables
    describing each model in words of their own are not lists.

Not a second list:
  - the registry itself, servers/models.cc;
  - a peer runtime's own folders naming the models of that runtime: servers/python/ serves four
    and must tell them apart, and in servers/<runtime>/ and switchcost/<runtime>/ the names are
    also the runtime's own words (Python's asyncio module, Go's go statement); the registry says
    which models are whose, by runtime;
  - lines between "# BEGIN generated NAME" and "# END generated NAME": deploy/generate.py writes
    them from the registry, and Registry.DeployFilesMatch fails when they differ from it;
  - dated records of what ran (docs/measurements/), a run saved for compare's tests
    (compare/testdata/) and quoted report lines (Markdown's '>');
  - a deliberate subset (three models chosen for a test), marked "not the model list" on one of
    its lines or on one of the two lines above.

Before it scans, it runs its detector on lists planted from the registry, so that it can fail.

Usage: model_lists_test.py --switchyard BIN [--root CHECKOUT]
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REGISTRY = "servers/models.cc"
RECORDS = ("docs/measurements/", "compare/testdata/")
MARKER = "not the model list"
WINDOW = 8
# What may stand between two names of a list in Markdown: anything but letters, or "and"/"or".
SEPARATOR = re.compile(r"[^A-Za-z_]{0,40}(?:(?:and|or)[^A-Za-z_]{1,10})?")
BEGIN = re.compile(r"^\s*# BEGIN generated [a-z-]+:")
END = re.compile(r"^\s*# END generated [a-z-]+$")


def listed_models(binary):
    """Each model's name and runtime ("c++", or a peer's: "go", "python"), in the registry's order."""
    done = subprocess.run([binary, "serve", "--list-models", "--format=tsv"], capture_output=True,
                          text=True, timeout=60)
    models = [line.split("\t") for line in done.stdout.splitlines() if line]
    if done.returncode != 0 or not models:
        sys.exit(f"{binary} serve --list-models failed: {done.stderr.strip()}")
    return [(fields[0], fields[4] if len(fields) > 4 else "c++") for fields in models]


def names_in(relative, models):
    """The names that would make a list in the file at `relative`: all of them, but in a peer
    runtime's folders (servers/<runtime>/, switchcost/<runtime>/) not that runtime's models."""
    return [name for name, runtime in models
            if runtime == "c++" or not relative.startswith((f"servers/{runtime}/",
                                                            f"switchcost/{runtime}/"))]


def checkout_files(root):
    done = subprocess.run(["git", "-C", str(root), "ls-files", "--cached", "--others",
                           "--exclude-standard", "-z"], capture_output=True)
    if done.returncode == 0:
        return [root / name for name in done.stdout.decode().split("\0") if name]
    # Not a git checkout (an exported tarball): everything but what git would ignore here.
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [s for s in subfolders if s not in (".git", "build", "results",
                                                             "__pycache__")]
        files += [Path(folder) / name for name in names]
    return files


def read_lines(path):
    try:
        return path.read_text(encoding="utf-8").split("\n")
    except (UnicodeDecodeError, OSError):
        return []  # binary or unreadable: no list a person would edit


def candidate_lines(lines, markdown):
    """`lines` with those that cannot hold a second list blanked (line numbers kept)."""
    kept, generated = [], False
    for line in lines:
        if BEGIN.match(line):
            generated = True
        quoted = markdown and line.lstrip().startswith(">")
        kept.append("" if generated or quoted else line)
        if END.match(line):
            generated = False
    return kept


def second_lists(lines, names, markdown):
    lines = candidate_lines(lines, markdown)
    return written_lists_in(lines, names) if markdown else lists_in(lines, names, WINDOW)


def name_pattern(names):
    return re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) +
                      r")(?![A-Za-z0-9_])")


def at_least(names):
    return max(2, min(3, len(names)))


def marked(lines, first, last):
    """Whether lines first..last (from 0), or the two above, say the names are a chosen few."""
    return any(MARKER in lines[j] for j in range(max(0, first - 2), last + 1))


def lists_in(lines, names, window):
    """(line number from 1, names) of each hand-written list: `at_least` distinct names within
    `window` lines, unless marked as a chosen subset."""
    pattern = name_pattern(names)
    found_in = [set(pattern.findall(line)) for line in lines]
    lists, i = [], 0
    while i < len(lines):
        if not found_in[i]:
            i += 1
            continue
        span = range(i, min(len(lines), i + window))
        seen = set().union(*(found_in[j] for j in span))
        if len(seen) < at_least(names):
            i += 1
            continue
        last = max(j for j in span if found_in[j])
        if not marked(lines, i, last):
            lists.append((i + 1, sorted(seen)))
        i = last + 1  # one report a list
    return lists


def written_lists_in(lines, names):
    """(line number from 1, names) of each run of names with only separators between them."""
    text = "\n".join(lines)
    matches = list(name_pattern(names).finditer(text))
    lists, run = [], matches[:1]
    for match in matches[1:] + [None]:
        if match and SEPARATOR.fullmatch(text, run[-1].end(), match.start()):
            run.append(match)
            continue
        found = sorted({m.group(1) for m in run})
        if len(found) >= at_least(names):
            first, last = (text.count("\n", 0, m.start()) for m in (run[0], run[-1]))
            if not marked(lines, first, last):
                lists.append((first + 1, found))
        run = [match]
    return lists


def self_test(names):
    """The detector finds a planted list in each shape, and passes what it must pass."""
    few = names[:3]
    if len(few) < 2:
        return []  # one model makes no list
    quoted = ", ".join(f'"{n}"' for n in few)
    cases = [
        ("an inline list", [f"models = [{quoted}]"], False, True),
        ("a list one name a line", ["models:"] + [f"  - {n}" for n in few], False, True),
        ("a Markdown line", [f"| `--model` | {', '.join(f'`{n}`' for n in few)} |"], True, True),
        ("a Markdown list over lines", [f"models {few[0]} 1,"] + [f"{n} 2 and" for n in few[1:]],
         True, True),
        ("Markdown prose", [f"{few[0]} serves it, {few[1]} queues it, and {few[-1]} drops it"],
         True, False),
        ("a marked subset", [f"# three of them ({MARKER})", f"models = [{quoted}]"], False, False),
        ("a generated region", ["  # BEGIN generated x: deploy/generate.py", f"  - [{quoted}]",
                                "  # END generated x"], False, False),
        ("a quoted report line", [f"> {', '.join(few)} held up"], True, False),
    ]
    if len(few) == 3:
        cases.append(("two names", [f'models = ["{few[0]}", "{few[1]}"]'], False, False))
    problems = []
    for what, lines, markdown, expected in cases:
        if bool(second_lists(lines, names, markdown)) != expected:
            problems.append(f"the detector {'missed' if expected else 'flagged'} {what}: {lines}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switchyard", required=True, help="the binary whose registry to read")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent),
                        help="the checkout to scan (default: this file's)")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    models = listed_models(args.switchyard)
    names = [name for name, _ in models]
    problems = self_test(names)

    scanned = 0
    for path in sorted(checkout_files(root)):
        relative = path.relative_to(root).as_posix()
        if relative == REGISTRY or relative.startswith(RECORDS) or not path.is_file():
            continue
        scanned += 1
        for line, found in second_lists(read_lines(path), names_in(relative, models),
                                        path.suffix == ".md"):
            problems.append(f"{relative}:{line}: a second list of the models ({', '.join(found)}): "
                            f"read them from `switchyard serve --list-models`, generate the file "
                            f"with deploy/generate.py, or mark a chosen subset '{MARKER}'")
    if problems:
        sys.exit("\n".join(problems))
    print(f"{len(names)} models listed once, in {REGISTRY}; {scanned} files scanned")


if __name__ == "__main__":
    main()
