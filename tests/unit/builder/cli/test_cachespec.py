"""``--cache-to``/``--cache-from`` values of ``kiln build`` and ``--explain``'s report."""

from __future__ import annotations

import io

import pytest

from builder.cli.cachespec import CacheSpec, parse_cache_spec, print_explanations
from builder.errors import UsageError


@pytest.mark.parametrize(
    ("flag", "text", "expected"),
    [
        ("--cache-to", "type=local,dest=/tmp/c", CacheSpec("local", "/tmp/c", "max")),
        ("--cache-to", "type=local,dest=/tmp/c,mode=min", CacheSpec("local", "/tmp/c", "min")),
        ("--cache-from", "type=local,src=/tmp/c", CacheSpec("local", "/tmp/c", "max")),
        ("--cache-to", "type=registry,ref=reg:5000/app:cache", CacheSpec("registry", "reg:5000/app:cache")),
        ("--cache-from", "reg:5000/app:cache", CacheSpec("registry", "reg:5000/app:cache")),
        ("--cache-to", "type=local,dest=/c,compression=zstd", CacheSpec("local", "/c", "max", "zstd")),
        (
            "--cache-to",
            "type=registry,ref=r/a:c,compression=none",
            CacheSpec("registry", "r/a:c", compression="none"),
        ),
    ],
)
def test_cache_specs_parse(flag: str, text: str, expected: CacheSpec) -> None:
    assert parse_cache_spec(text, flag) == expected


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        ("--cache-to", "type=local,src=/c", "--cache-to 'type=local,src=/c': type=local needs dest=DIR"),
        ("--cache-from", "type=local,dest=/c", "--cache-from 'type=local,dest=/c': type=local needs src=DIR"),
        ("--cache-to", "type=gha", "--cache-to 'type=gha': type must be local or registry"),
        (
            "--cache-to",
            "type=local,dest=/c,mode=all",
            "--cache-to 'type=local,dest=/c,mode=all': mode must be min or max",
        ),
        (
            "--cache-to",
            "type=registry",
            "--cache-to 'type=registry': type=registry needs ref=REGISTRY/REPOSITORY:TAG",
        ),
        ("--cache-to", "type=local,dest=/c,x=1", "--cache-to 'type=local,dest=/c,x=1': unknown field 'x'"),
        ("--cache-to", "type=local,dest", "--cache-to 'type=local,dest': expected KEY=VALUE fields"),
        (
            "--cache-to",
            "type=local,dest=/c,compression=xz",
            "--cache-to 'type=local,dest=/c,compression=xz': compression must be gzip, zstd or none, "
            "not 'xz'",
        ),
    ],
)
def test_bad_cache_specs_are_usage_errors(flag: str, text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_cache_spec(text, flag)
    assert str(caught.value) == message


def test_explanations_list_every_reason_of_every_rebuilt_step() -> None:
    stream = io.StringIO()
    print_explanations(
        [(4, ("previous step was rebuilt", "build arg V changed from 1 to 2")), (3, ("x",))], stream
    )
    assert stream.getvalue() == (
        "explain: #3 was rebuilt because:\n"
        "  - x\n"
        "explain: #4 was rebuilt because:\n"
        "  - previous step was rebuilt\n"
        "  - build arg V changed from 1 to 2\n"
    )


def test_a_fully_cached_build_says_so() -> None:
    stream = io.StringIO()
    print_explanations([], stream)
    assert stream.getvalue() == "explain: every step came from the cache\n"
