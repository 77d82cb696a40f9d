"""The compiled parts: two hot loops of the collector's workers in C (everything else is in
pyproject.toml). Without a C compiler the install fails here rather than leave the collector
silently slower; see docs/collector.md."""

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        # OTLP protobuf straight into span rows (collector/receivers/decode.py)
        Extension(
            "collector.receivers._fast_decode",
            ["collector/receivers/_fast_decode.c"],
            extra_compile_args=FLAGS,
        ),
        # span rows into columns (collector/rows.py)
        Extension("collector._fast_rows", ["collector/_fast_rows.c"], extra_compile_args=FLAGS),
    ]
)
