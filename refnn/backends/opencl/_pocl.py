"""Work around PoCL 3.0 on CPUs newer than its bundled LLVM (e.g. AMD Zen 5).

``pocl-binary-distribution`` 3.0 (the newest on PyPI) links an LLVM that does not know
every CPU. On such a CPU ``llvm::sys::getHostCPUName()`` answers ``"generic"``, PoCL
stores that string in its device record and passes ``-target-cpu generic`` to clang,
which rejects it: every program fails to build with ``unknown target CPU 'generic'``
(pocl/pocl#1049; PoCL 3.0 has no setting to override the name). The device then
reports itself as ``... HSTR: pthread-x86_64-...-generic``.

The fix used by PoCL's own maintainers' users is to give LLVM a real CPU name. PoCL reads
the name from its device record at every build, so we overwrite that record's string
in place (it is a small malloc'd copy; we check its usable size first) with the most
capable generic x86-64 CPU whose features this machine has -- the same feature level as
the kernel library PoCL already picked from the CPU's feature flags.

``REFNN_POCL_CPU=<llvm cpu name>`` chooses the name; ``REFNN_POCL_CPU=off`` disables this.
Nothing happens on any other device.
"""
import ctypes
import os

_GENERIC = b"generic\0"


def _readable_ranges():
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            addresses, perms = line.split()[:2]
            if perms.startswith("r"):
                lo, hi = (int(v, 16) for v in addresses.split("-"))
                ranges.append((lo, hi))
    return ranges


def _cpu_name_for_this_machine():
    """The LLVM CPU of the x86-64 feature level this machine has (from /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line.split(":", 1)[1].split() for line in info
                          if line.startswith("flags")), [])
    except OSError:
        flags = []
    flags = set(flags)
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"} <= flags:
        return "skylake-avx512"
    if {"avx2", "fma", "bmi2"} <= flags:
        return "haswell"
    if "avx" in flags:
        return "sandybridge"
    return "x86-64"


def needs_workaround(dev):
    try:
        return "PoCL" in dev.version and dev.version.rstrip().endswith("-generic")
    except Exception:                       # a device that cannot report its version
        return False


def fix_unknown_cpu(dev):
    """Rename PoCL's 'generic' target CPU for ``dev``; returns the new name or None."""
    choice = os.environ.get("REFNN_POCL_CPU", "")
    if choice.lower() in ("off", "0", "no") or not needs_workaround(dev):
        return None
    name = (choice or _cpu_name_for_this_machine()).encode() + b"\0"
    ranges = _readable_ranges()

    def readable(addr, size):
        return any(lo <= addr and addr + size <= hi for lo, hi in ranges)

    base = dev.int_ptr
    if not readable(base, 4096):
        return None
    libc = ctypes.CDLL(None)
    libc.malloc_usable_size.restype = ctypes.c_size_t
    libc.malloc_usable_size.argtypes = [ctypes.c_void_p]
    hits = [p for p in (ctypes.c_uint64 * 512).from_address(base)
            if p and readable(p, len(_GENERIC))
            and ctypes.string_at(p, len(_GENERIC)) == _GENERIC]
    if len(hits) != 1 or libc.malloc_usable_size(hits[0]) < len(name):
        return None
    ctypes.memmove(hits[0], name, len(name))
    return name[:-1].decode()
