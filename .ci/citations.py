#!/usr/bin/env python3
"""List the specification citations in the Rust sources and the tests that mention them.

A citation block is a `//=` line naming the document, section and (optionally) figure,
followed by one or more `//#` lines quoting the requirement verbatim:

    //= NVMe/TCP 1.0 §3.6.2.3, Figure 21
    //# Maximum Host to Controller Data length (MAXH2CDATA): Specifies the maximum number of
    //# PDU-Data bytes per H2CData PDU in bytes. ...

Two documents can be cited this way: "NVMe/TCP 1.0" (the NVMe/TCP Transport Specification
1.0) and "NVM Command Set 1.0" (the NVM Command Set Specification 1.0), e.g.

    //= NVM Command Set 1.0 §3.2.3, Figure 39

A reference whose text is not available here to quote (NVMe Base 2.0, NVMe-oF 1.1, the
Linux host's code) is marked `//~` instead: it names its source and paraphrases, and is only
counted, so it can be turned into a quoted citation once the text can be checked.

The script walks every `.rs` file under `protocol/src`, `target/src` and `integration/src`,
collects each block with its file:line, and prints every cited requirement (document, section,
figure, first words of the quote) followed by the tests that mention the same document and
section, i.e. the string "NVMe/TCP 1.0 §<section>" or "NVM Command Set 1.0 §<section>"
(mentions are keyed by document and section). Tests are searched in the `src` and `tests`
directories of the same crates; test text is a whole file under a `tests` directory or named
`tests.rs`, or the body of a `#[cfg(test)] mod ... { ... }` block elsewhere.

Exit status: 1 if a `//=` line is malformed (after leading spaces it does not match
`^//= (NVMe/TCP 1\\.0|NVM Command Set 1\\.0) §[0-9.]+(, Figure [0-9]+)?$`) or is not
followed by a `//#` line; 0 otherwise. Problems are printed to stderr as file:line: message.

Usage (from anywhere; paths are relative to the repository root, the parent of `.ci`):

    python3 .ci/citations.py              # every citation and its tests
    python3 .ci/citations.py --uncovered  # only citations that no test mentions

The last line printed is the summary "N citations, M with tests, K references not quoted".
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ("protocol", "target", "integration")
CITATION_DIRS = tuple(f"{c}/src" for c in CRATES)
TEST_DIRS = tuple(d for c in CRATES for d in (f"{c}/src", f"{c}/tests"))

HEADER_RE = re.compile(
    r"^//= (NVMe/TCP 1\.0|NVM Command Set 1\.0) §([0-9.]+)(?:, Figure ([0-9]+))?$"
)
# A mention in a test: the section must end where the digits end ("§3.3" is not "§3.3.2").
MENTION_RE = re.compile(r"(NVMe/TCP 1\.0|NVM Command Set 1\.0) §([0-9]+(?:\.[0-9]+)*)")
FN_RE = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")
CFG_TEST_RE = re.compile(r"^\s*#\[cfg\(test\)\]")
MOD_RE = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+[A-Za-z_][A-Za-z0-9_]*\s*\{")
FIRST_WORDS = 10


@dataclass
class Citation:
    path: str
    line: int
    document: str
    section: str
    figure: str | None
    quote: list[str]
    tests: list[str] = field(default_factory=list)

    def title(self) -> str:
        fig = f", Figure {self.figure}" if self.figure else ""
        return f"{self.document} §{self.section}{fig}"

    def first_words(self) -> str:
        words = " ".join(self.quote).split()
        text = " ".join(words[:FIRST_WORDS])
        return text + (" ..." if len(words) > FIRST_WORDS else "")


def rust_files(dirs: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        base = ROOT / d
        if base.is_dir():
            files.extend(sorted(base.rglob("*.rs")))
    return files


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def collect_citations(errors: list[str], unquoted: list[str]) -> list[Citation]:
    citations: list[Citation] = []
    for path in rust_files(CITATION_DIRS):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for i, raw in enumerate(lines):
            text = raw.lstrip()
            if text.startswith("//~") and (i == 0 or not lines[i - 1].lstrip().startswith("//~")):
                unquoted.append(f"{rel(path)}:{i + 1}")
            if not text.startswith("//="):
                continue
            where = f"{rel(path)}:{i + 1}"
            quote = []
            j = i + 1
            while j < len(lines) and lines[j].lstrip().startswith("//#"):
                quote.append(lines[j].lstrip()[3:].strip())
                j += 1
            m = HEADER_RE.match(text.rstrip())
            if not m:
                # Old free-form blocks run over several `//=` lines: report the block once.
                if i == 0 or not lines[i - 1].lstrip().startswith("//="):
                    errors.append(f"{where}: malformed citation line: {text.rstrip()}")
                continue
            if not quote:
                errors.append(f"{where}: citation has no //# line after it")
                continue
            citations.append(
                Citation(rel(path), i + 1, m.group(1), m.group(2), m.group(3), quote)
            )
    return citations


def test_ranges(path: Path, lines: list[str]) -> list[tuple[int, int]]:
    """Line ranges (0-based, end exclusive) of `path` that are test code."""
    if "tests" in path.relative_to(ROOT).parts[:-1] or path.name == "tests.rs":
        return [(0, len(lines))]
    ranges = []
    i = 0
    while i < len(lines):
        if not CFG_TEST_RE.match(lines[i]):
            i += 1
            continue
        # The module the attribute applies to (other attributes and comments may come between).
        j = i + 1
        while j < len(lines) and (
            lines[j].lstrip().startswith("#[") or lines[j].lstrip().startswith("//")
        ):
            j += 1
        if j >= len(lines) or not MOD_RE.match(lines[j]):
            i = j
            continue
        depth = 0
        end = len(lines)
        for k in range(j, len(lines)):
            depth += lines[k].count("{") - lines[k].count("}")
            if depth <= 0:
                end = k + 1
                break
        ranges.append((i, end))
        i = end
    return ranges


def test_name(lines: list[str], at: int, start: int, end: int) -> str | None:
    """The test function a mention on line `at` belongs to: the next `fn` within a few lines
    (a comment above the function), else the closest `fn` before it."""
    for k in range(at, min(at + 6, end)):
        m = FN_RE.search(lines[k])
        if m:
            return m.group(1)
    for k in range(at, start - 1, -1):
        m = FN_RE.search(lines[k])
        if m:
            return m.group(1)
    return None


def collect_mentions() -> dict[tuple[str, str], list[str]]:
    """Test labels keyed by (document, section)."""
    mentions: dict[tuple[str, str], list[str]] = {}
    for path in rust_files(TEST_DIRS):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for start, end in test_ranges(path, lines):
            for k in range(start, end):
                for m in MENTION_RE.finditer(lines[k]):
                    name = test_name(lines, k, start, end)
                    label = f"{rel(path)}:{k + 1}" + (f" ({name})" if name else "")
                    mentions.setdefault((m.group(1), m.group(2)), []).append(label)
    return mentions


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(
            "List NVMe/TCP 1.0 and NVM Command Set 1.0 citations (//= and //# blocks) "
            "and the tests naming them."
        )
    )
    parser.add_argument(
        "--uncovered", action="store_true", help="list only citations that no test mentions"
    )
    args = parser.parse_args()

    errors: list[str] = []
    unquoted: list[str] = []
    citations = collect_citations(errors, unquoted)
    mentions = collect_mentions()
    for c in citations:
        c.tests = mentions.get((c.document, c.section), [])

    for c in citations:
        if args.uncovered and c.tests:
            continue
        print(f"{c.path}:{c.line}: {c.title()}: {c.first_words()}")
        if not args.uncovered:
            if c.tests:
                for t in c.tests:
                    print(f"    test {t}")
            else:
                print("    no test")
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"{len(errors)} malformed citation(s)", file=sys.stderr)
    covered = sum(1 for c in citations if c.tests)
    print(
        f"{len(citations)} citations, {covered} with tests, "
        f"{len(unquoted)} references not quoted"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
