"""How fast kiln decides ``.dockerignore`` exclusion: 100,000 generated context paths.

Run from the repository root: ``python bench/dockerignore.py [path count]``. The paths
look like a mid-sized monorepo (sources, node_modules, build output, VCS data, caches);
the ignore file has 20 patterns with ``**`` and ``!`` re-includes. Prints the time to
compile the patterns and to decide every path, and the paths decided per second.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builder.patterns import PatternMatcher, read_ignore_file

IGNORE_FILE = """\
# build output and dependencies
.git
**/node_modules
!**/node_modules/.keep
dist/
build/**
!build/assets/**
**/*.pyc
**/__pycache__
*.log
.env*
!.env.example
coverage/
**/.DS_Store
tmp/*
docs/**/*.md
!docs/README.md
**/*.swp
**/.cache
vendor/[a-c]*
secrets/?*.key
"""

TOP_DIRS = ["src", "lib", "node_modules", "build", "dist", "docs", "vendor", "tests", ".git", "tmp"]
SUB_DIRS = ["core", "api", "ui", "node_modules", "__pycache__", "assets", "util", "a1", "cache"]
FILE_NAMES = ["index.js", "main.py", "main.pyc", "README.md", "app.log", ".DS_Store", "x.swp"]


def generate_paths(count: int, seed: int = 1) -> list[str]:
    """``count`` plausible context paths, 1 to 6 components deep, reproducibly."""
    generator = random.Random(seed)
    paths = []
    for _ in range(count):
        depth = generator.randint(0, 4)
        parts = [generator.choice(TOP_DIRS)]
        parts += [generator.choice(SUB_DIRS) for _ in range(depth)]
        parts.append(generator.choice(FILE_NAMES))
        paths.append("/".join(parts))
    return paths


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    patterns = read_ignore_file(IGNORE_FILE)
    paths = generate_paths(count)

    started = time.perf_counter()
    matcher = PatternMatcher(patterns)
    compiled = time.perf_counter()
    excluded_count = sum(matcher.excluded(path) for path in paths)
    decided = time.perf_counter()

    seconds = decided - compiled
    print(f"patterns: {len(patterns)}  compile: {(compiled - started) * 1000:.2f} ms")
    print(f"paths: {count}  excluded: {excluded_count}  decide: {seconds:.3f} s")
    print(f"{count / seconds:,.0f} paths/s")


if __name__ == "__main__":
    main()
