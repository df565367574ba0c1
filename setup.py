"""The optional C parts: the reader of delimited numbers, the fused kernel
and the writer of per-row numbers; xent falls back to Python without them."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            f"xentcli.{name}", [f"xentcli/{name}.c"], depends=depends, optional=True,
            extra_compile_args=["-O3", "-Wno-psabi"],
        )
        for name, depends in (("_fastcsv", ["xentcli/_pow5.h"]), ("_kernel", []), ("_format", []))
    ]
)
