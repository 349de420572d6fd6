"""Hostile manifests that cannot be files of the repository: not UTF-8, or megabytes long.

Each is written on demand with the same two header lines as those of hostile/
(``# class:``, ``# expect:``). Used by test_hostile.py and tools/bench_manifest.py.
"""
from __future__ import annotations

from pathlib import Path

BASE = b"name: evil\nnodes:\n  compute: {count: 2, select: {role: Compute}}\nimage: {name: slurm-node, tag: '2026.11'}\n"

GENERATED = {
    "not_utf8": ("encoding", "line 7, column 16: not UTF-8 text: byte 0xff", BASE + b"description: ok\xff\xfe\n"),
    "latin1": ("encoding", "line 7, column 17: not UTF-8 text: byte 0xe9", BASE + "description: caf\xe9\n".encode("latin-1")),
    "kernel_1mb": ("kernel command line", "kernel_params: 1050000 bytes; at most 1535",
                   BASE + b"kernel_params: '" + b"quiet " * 175000 + b"'\n"),
    "size_bound": ("size", "more than 4194304 bytes; a manifest is a few kilobytes",
                   b"description: '" + b"x" * (4 * 1024 * 1024) + b"'\n"),
}


def write(name: str, directory: Path) -> Path:
    cls, expect, body = GENERATED[name]
    path = Path(directory) / (name + ".manifest")
    path.write_bytes(("# class: %s\n# expect: %s\n" % (cls, expect)).encode() + body)
    return path
