"""Where variables live, and whether they fit there: checked before anything is allocated.

An allocation larger than the device refuses with a one-line OutOfMemory naming the bytes
needed and the bytes the device has, instead of TensorFlow's OOM traceback (or, on a CPU
with overcommitted memory, the kernel's OOM killer some minutes later).
"""
import tensorflow as tf

from rawdqn.errors import UsageError


class OutOfMemory(UsageError):
    """What a run would allocate does not fit on its device; the message says how much."""


def resolve_device(device):
    """'cpu' → /CPU:0, 'gpu' → /GPU:0 (a UsageError if there is none), None → TF's choice."""
    if device in (None, "", "auto"):
        return None
    if device == "cpu":
        return "/CPU:0"
    if device == "gpu":
        if not tf.config.list_physical_devices("GPU"):
            raise UsageError("--device gpu was asked for but TensorFlow sees no GPU; use --device cpu")
        return "/GPU:0"
    raise UsageError(f"device must be cpu or gpu; got {device!r}")


def placement(device):
    """The device variables go to: `device`, or the first GPU TensorFlow would pick, or the CPU."""
    if device:
        return device
    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"


def available_bytes(device):
    """Free memory of `device` in bytes, or None where it cannot be read.

    CPU: the kernel's MemAvailable (what can be allocated without swapping). GPU: total
    memory as the CUDA runtime reports it, less what TensorFlow holds now.
    """
    if "GPU" in placement(device).upper():
        try:
            details = tf.config.experimental.get_memory_info(placement(device).lstrip("/"))
            total = _gpu_total_bytes()
            return None if total is None else total - details["current"]
        except (ValueError, RuntimeError):
            return None
    available = proc_bytes("/proc/meminfo", "MemAvailable")
    if available is not None:
        return available
    try:
        import os
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gpu_total_bytes():
    """The first GPU's memory, from nvidia-smi where it is installed (TensorFlow does not report it)."""
    import shutil
    import subprocess
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        return int(out.split()[0]) * 2**20
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def format_bytes(count):
    """1536 → '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:,.0f} B" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024


def check_fits(parts, device, advice):
    """Raise OutOfMemory if the bytes in `parts` ({"replay": n, ...}) exceed what `device` has free."""
    needed = sum(parts.values())
    free = available_bytes(device)
    if free is not None and needed > free:
        detail = ", ".join(f"{name} {format_bytes(size)}" for name, size in parts.items())
        raise OutOfMemory(f"this run needs {format_bytes(needed)} ({detail}) but {placement(device)} "
                          f"has {format_bytes(free)} free; {advice}")


def allocation_failed(parts, device, advice):
    """The OutOfMemory to raise when TensorFlow's allocator refused after all (free memory unknown)."""
    detail = ", ".join(f"{name} {format_bytes(size)}" for name, size in parts.items())
    return OutOfMemory(f"{placement(device)} ran out of memory allocating this run's "
                       f"{format_bytes(sum(parts.values()))} ({detail}); {advice}")


def proc_bytes(path, key):
    """A "key: N kB" line of a Linux /proc file (meminfo, self/status) in bytes; None if absent."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
