"""The optional C reader of delimited numbers; xent falls back to numpy without it."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("xentcli._fastcsv", ["xentcli/_fastcsv.c"], optional=True, extra_compile_args=["-O3"])])
