"""Build the Cython kernels of refnn (the `cpu` backend).

The table below is the only list of extension modules: module -> (sources, uses OpenMP).
Directives: bounds checks off (every kernel is reached only through the validating
wrappers in refnn/backends/cpu/), unless REFNN_CYTHON_DEBUG=1 turns them back on.
REFNN_BUILD_ONLY=dense,activation builds a subset (development convenience).
OpenMP is used when the compiler accepts -fopenmp; otherwise the kernels build serial.
"""
import os
import sys
import tempfile

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXTENSIONS = {
    "refnn._ext._blas": (["refnn/_ext/_blas.pyx"], False),
    "refnn._ext._threads": (["refnn/_ext/_threads.pyx"], True),
    "refnn._ext.dense": (["refnn/_ext/dense.pyx"], True),
    "refnn._ext.activation": (["refnn/_ext/activation.pyx"], True),
    "refnn._ext.loss": (["refnn/_ext/loss.pyx"], True),
    "refnn._ext.optim": (["refnn/_ext/optim.pyx"], True),
    "refnn._ext.conv": (["refnn/_ext/conv.pyx"], True),
    "refnn._ext.pool": (["refnn/_ext/pool.pyx"], True),
    "refnn._ext.image": (["refnn/_ext/image.pyx"], True),
    "refnn._ext.channelwise": (["refnn/_ext/channelwise.pyx"], True),
    "refnn._ext.sequence": (["refnn/_ext/sequence.pyx"], True),
    "refnn._ext.embedding": (["refnn/_ext/embedding.pyx"], True),
    "refnn._ext.recurrent": (["refnn/_ext/recurrent.pyx"], True),
    "refnn._ext.norm": (["refnn/_ext/norm.pyx"], True),
    "refnn._ext.attention": (["refnn/_ext/attention.pyx"], True),
}

DEBUG = os.environ.get("REFNN_CYTHON_DEBUG") == "1"
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
}


def _compiler_accepts_openmp(compiler):
    """Try to compile and link a tiny OpenMP program with the build's compiler."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 0;}\n")
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, "omp_probe", output_dir=tmp,
                                     extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Adds -O3 everywhere and -fopenmp where the table asks and the compiler can."""

    def build_extensions(self):
        has_omp = _compiler_accepts_openmp(self.compiler)
        if not has_omp:
            print("refnn: compiler has no OpenMP; building serial kernels", file=sys.stderr)
        for ext in self.extensions:
            ext.extra_compile_args += ["-O3"]
            if has_omp and ext.name in _OPENMP:
                ext.extra_compile_args += ["-fopenmp"]
                ext.extra_link_args += ["-fopenmp"]
        super().build_extensions()


only = os.environ.get("REFNN_BUILD_ONLY")
selected = {k: v for k, v in EXTENSIONS.items()
            if not only or k.rsplit(".", 1)[1] in only.split(",")}
_OPENMP = {name for name, (_, omp) in selected.items() if omp}

ext_modules = [
    Extension(name, sources, include_dirs=[numpy.get_include()],
              define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])
    for name, (sources, _) in selected.items()
]

if __name__ == "__main__" or "setuptools" in sys.modules:
    from Cython.Build import cythonize

    setup(
        ext_modules=cythonize(ext_modules, compiler_directives=DIRECTIVES, quiet=True),
        cmdclass={"build_ext": BuildExt},
    )
