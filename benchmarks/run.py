"""refnn speed suite: ``python benchmarks/run.py [case ...] [--repeat N]``.

For each case and each path (reference, cpu, opencl, plus any baselines the case
defines, e.g. bare NumPy, and PyTorch's CPU path when ``import torch`` works) it prints
the median time of N runs, their min-max, the ratio to the reference path and the
ratio to PyTorch on the same case in the same run (> 1 means slower than PyTorch).
torch is optional and never a dependency of refnn.

Cases live in benchmarks/cases/<name>.py and are registered in CASES below. A case
module defines ``VARIANTS`` (names), ``REPEAT`` (default N) and
``make(path, variant) -> callable or None``: the callable runs the work once and
returns only when it is finished (OpenCL paths synchronise); None means the case
has no such path. Setup (data, weights, warm-up builds) happens in ``make``.

Each (case, variant, path) runs in a fresh Python process (``--in-process`` turns
that off): NumPy, SciPy and PyTorch each bring their own BLAS/OpenMP thread pool, and
a pool left spinning by one path slows the next one down severalfold on 2 cores.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))      # the repository root: import refnn
sys.path.insert(0, HERE)                       # import cases

from cases import conv, fc, lenet_step, mlp_epoch, pool  # noqa: E402
from cases import bn  # noqa: E402
from cases import gru, lstm  # noqa: E402
from cases import attention  # noqa: E402

#: case name -> module (or a class with VARIANTS, REPEAT, make); later issues add lstm, ... here
CASES = {
    "fc": fc,
    "mlp_epoch": mlp_epoch,
    "conv": conv,
    "conv_first": conv.CONV_FIRST,
    "pool": pool,
    "bn": bn,
    "lenet_step": lenet_step,
    "lstm": lstm,
    "gru": gru,
    "attention": attention,
}

#: paths every case is asked for, in print order; a case may add baselines of its own
PATHS = ("reference", "cpu", "opencl")


def have_torch():
    try:
        import torch  # noqa: F401
    except Exception:
        return False
    return True


def time_it(fn, repeat):
    """Seconds of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _fmt(seconds):
    return f"{seconds * 1e3:9.2f} ms" if seconds < 10 else f"{seconds:9.2f} s "


def measure(name, variant, path, repeat):
    """Times of one path: a list of seconds, None (no such path) or an error string."""
    module = CASES[name]
    try:
        fn = module.make(path, variant)
    except Exception as err:            # a path that cannot run here is reported
        return f"unavailable: {type(err).__name__}: {err}"
    if fn is None:
        return None
    return time_it(fn, repeat or module.REPEAT)


#: environment variables that cap the thread pools of every path (--threads N)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "REFNN_NUM_THREADS", "POCL_CPU_MAX_CU_COUNT", "POCL_MAX_PTHREAD_COUNT")


def measure_isolated(name, variant, path, repeat, threads=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--one", name, variant, path]
    if repeat:
        cmd += ["--repeat", str(repeat)]
    env = dict(os.environ)
    if threads:
        env.update({var: str(threads) for var in THREAD_VARS})
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed (exit {done.returncode}): {tail}"
    return json.loads(lines[-1][len("RESULT "):])


def run_case(name, module, repeat, torch_ok, isolate=True, threads=None):
    paths = list(PATHS) + list(getattr(module, "BASELINES", ())) + (["torch"] if torch_ok else [])
    for variant in module.VARIANTS:
        print(f"\n{name} / {variant}")
        print(f"  {'path':<12}{'median':>12}{'min - max':>26}{'/reference':>12}{'/torch':>9}")
        medians, rows = {}, []
        for path in paths:
            got = (measure_isolated(name, variant, path, repeat, threads) if isolate
                   else measure(name, variant, path, repeat))
            if got is None:
                continue
            if isinstance(got, str):
                rows.append((path, None, got))
                continue
            medians[path] = statistics.median(got)
            rows.append((path, got, None))
        for path, times, note in rows:
            if times is None:
                print(f"  {path:<12}{note}")
                continue
            med = medians[path]
            ref = f"{med / medians['reference']:10.2f}x" if "reference" in medians else ""
            tor = f"{med / medians['torch']:8.2f}x" if "torch" in medians else ""
            spread = f"{_fmt(min(times)).strip()} - {_fmt(max(times)).strip()}"
            print(f"  {path:<12}{_fmt(med):>12}{spread:>26}{ref:>12}{tor:>9}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"cases to run (default: all of {list(CASES)})")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed runs per path (default: the case's REPEAT)")
    parser.add_argument("--in-process", action="store_true",
                        help="run every path in this process (default: one process each)")
    parser.add_argument("--threads", type=int, default=None,
                        help="cap every thread pool (BLAS, OpenMP, PoCL, torch) at N")
    parser.add_argument("--one", nargs=3, metavar=("CASE", "VARIANT", "PATH"),
                        help=argparse.SUPPRESS)   # internal: one measurement, JSON out
    args = parser.parse_args(argv)
    if args.one:
        got = measure(*args.one, args.repeat)
        print("RESULT " + json.dumps(got), flush=True)
        return
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {list(CASES)}")
    torch_ok = have_torch()
    import numpy as np
    print(f"refnn benchmarks  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, torch "
          f"{__import__('torch').__version__ if torch_ok else 'not installed'}, "
          f"threads {args.threads or 'default'}, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for name in args.cases or CASES:
        run_case(name, CASES[name], args.repeat, torch_ok, isolate=not args.in_process,
                 threads=args.threads)


if __name__ == "__main__":
    main()
