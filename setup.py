"""The optional C parts: the reader of delimited numbers and the fused kernel;
xent falls back to numpy without them."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(f"xentcli.{name}", [f"xentcli/{name}.c"], optional=True, extra_compile_args=["-O3", "-Wno-psabi"])
        for name in ("_fastcsv", "_kernel")
    ]
)
