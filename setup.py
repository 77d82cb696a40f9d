"""The one compiled part: the collector's OTLP protobuf fast path (everything else is in
pyproject.toml). Without a C compiler the install fails here rather than leave the collector
silently slower; see docs/collector.md."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "collector.receivers._fast_decode",
            ["collector/receivers/_fast_decode.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
