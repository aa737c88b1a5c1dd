"""Build hook for the one optional C extension; everything else is in pyproject.toml.

``tcptrace_sm._scan`` walks pcap record headers (see its source). It is optional: where no C
compiler is available the install still succeeds and the reader uses its pure-Python loop,
which gives the same results, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tcptrace_sm._scan",
            sources=["tcptrace_sm/_scan.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
