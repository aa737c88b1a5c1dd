"""Build hook for the one optional C extension; everything else is in pyproject.toml.

``tcptrace_sm._scan`` holds the reader's record walks and plain-TCP decoding, the fast
engine's SYN option walk and its chunk evaluation (``_fastpath.c``), and the CSV writer's cell
formatting (see the sources). It is
optional: where no C compiler is available the install still succeeds and the same answers
come from numpy and Python, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tcptrace_sm._scan",
            sources=["tcptrace_sm/_scan.c", "tcptrace_sm/_fastpath.c"],
            depends=["tcptrace_sm/_scan.h"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
