"""What the machine did during each epoch of a run: the ``system/`` series.

A run's writer thread (``api.Run``) owns one :class:`Sampler`; nothing here runs in the
training thread. ``Run.log(..., epoch=N)`` only notes, for an epoch higher than any the run
logged before, the epoch and a ``time.perf_counter()`` stamp: epoch N ends at the first
log call that names it (Ultralytics, and most training loops, log an epoch once, at its
end). On each wake the writer hands those marks to :meth:`Sampler.tick`, and queues the
points it returns with the user's, so they take the same way to the book (a flush, the
spool on a fault, the outbox of a remote book).

Per epoch N, over its window (from the end of the epoch before, or the run's start, to
the end of epoch N):

* ``system/epoch_time_s``: the window's length;
* ``system/cpu_percent``: the machine's mean CPU use over the window (all cores: 100 is
  every core busy), counted from ``psutil.cpu_times()`` as ``psutil.cpu_percent`` counts,
  but against the sampler's own reference, so another caller of ``cpu_percent`` in the
  process (or another run) does not shorten the window;
* ``system/ram_used_mib``: the peak of the machine's RAM in use (``virtual_memory().used``);
* ``system/process_rss_mib``: the peak resident memory of this process;
* with an NVIDIA GPU and nvidia-ml-py (the ``gpu`` extra), per GPU ``i`` (its index in
  ``nvidia-smi``): ``system/gpu{i}/util_percent`` and ``system/gpu{i}/power_w``, means;
  ``system/gpu{i}/memory_used_mib`` and ``system/gpu{i}/temperature_c``, peaks. A field a
  GPU does not report is left out. The GPUs are those ``CUDA_VISIBLE_DEVICES`` leaves
  visible (indices or UUIDs; a MIG entry: all of them); ``CUDA_VISIBLE_DEVICES=""`` or
  ``-1`` hides them, and then, as on a machine with no NVIDIA device, ``pynvml`` is never
  imported.

Peaks and means are of the polls the writer makes: one at each epoch's end and one at most
every :data:`POLL_INTERVAL_S` between. When several epochs end between two wakes of the
writer (epochs shorter than its ``flush_interval``), each gets its epoch time and the last
of them the other figures, which then cover them all.

Nothing here raises into the writer: a source that fails (psutil missing or broken, NVML
failing) stops with one warning (``warn``) and the other figures go on; epoch times need
no source. ``TRIALBOOK_SYSTEM_METRICS=0`` (``settings.system_metrics``) records none.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "CPU",
    "EPOCH_TIME",
    "GPU_FIELDS",
    "POLL_INTERVAL_S",
    "PREFIX",
    "RAM",
    "RSS",
    "Sampler",
    "cpu_busy_total",
    "gpu_key",
    "nvidia_device_present",
    "visible_gpus",
]

PREFIX = "system/"
EPOCH_TIME = "system/epoch_time_s"
CPU = "system/cpu_percent"
RAM = "system/ram_used_mib"
RSS = "system/process_rss_mib"
GPU_FIELDS = ("util_percent", "memory_used_mib", "temperature_c", "power_w")
_MEANS = ("util_percent", "power_w")  # the other polled figures are peaks
POLL_INTERVAL_S = 0.5
MIB = float(1 << 20)

Point = tuple[int, dict[str, float]]


def gpu_key(index: int, field: str) -> str:
    """``system/gpu{index}/{field}``."""
    return f"{PREFIX}gpu{index}/{field}"


def cpu_busy_total(times: Any) -> tuple[float, float]:
    """(busy, total) CPU seconds of a ``psutil.cpu_times()`` reading, counted as
    ``psutil.cpu_percent`` counts them: guest time is already in user time (Linux), and
    waiting for I/O is idle."""
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    busy = total - times.idle - getattr(times, "iowait", 0.0)
    return busy, total


# --------------------------------------------------------------------------- GPUs
def nvidia_device_present() -> bool:
    """Whether this machine may have an NVIDIA GPU, told without importing anything: on
    Linux a device file of the driver (``/dev/nvidiactl``, ``/dev/nvidia0``; WSL's
    ``/dev/dxg`` with its NVML library); on Windows, yes (NVML then says); elsewhere no."""
    if sys.platform.startswith("linux"):
        if os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0"):
            return True
        return os.path.exists("/dev/dxg") and os.path.exists("/usr/lib/wsl/lib/libnvidia-ml.so.1")
    return sys.platform == "win32"


def _hides_all_gpus(value: str | None) -> bool:
    """``CUDA_VISIBLE_DEVICES`` that leaves no GPU, whatever the machine has (``""``, ``-1``)."""
    if value is None:
        return False
    first = value.split(",")[0].strip()
    return first == "" or first.startswith("-")


def visible_gpus(value: str | None, uuids: Sequence[str]) -> list[int]:
    """The NVML indices of the GPUs ``CUDA_VISIBLE_DEVICES=value`` leaves visible, of a
    machine whose GPU ``i`` has UUID ``uuids[i]``: unset, all; otherwise CUDA's rule, a
    comma-separated list of indices or UUIDs (or unique UUID prefixes) read up to the
    first entry that names no GPU (or one named already). A MIG entry: all (which slice a
    process uses is not told apart here)."""
    if value is None:
        return list(range(len(uuids)))
    found: list[int] = []
    for raw in value.split(","):
        entry = raw.strip()
        if entry.startswith("MIG-"):
            return list(range(len(uuids)))
        if entry.lstrip("-").isdigit():
            index = int(entry)
        else:
            matches = [i for i, u in enumerate(uuids) if entry and u.startswith(entry)]
            index = matches[0] if len(matches) == 1 else -1
        if not 0 <= index < len(uuids) or index in found:
            break
        found.append(index)
    return found


_nvml_lock = threading.Lock()
_nvml: list[Any] = []  # [pynvml] once initialised in this process, [None] once that failed


def _nvml_module() -> tuple[Any, str | None]:
    """pynvml, initialised once per process (later calls reuse it, or its failure): (the
    module or None, why it failed, said to the first caller only)."""
    with _nvml_lock:
        if _nvml:
            return _nvml[0], None
        try:
            import pynvml  # the gpu extra; here only when a device file says there is a GPU

            pynvml.nvmlInit()
        except Exception as exc:
            _nvml.append(None)
            return None, f"{type(exc).__name__}: {exc}"
        _nvml.append(pynvml)
        return pynvml, None


class _Gpus:
    """The visible GPUs of the machine, read through NVML."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in handles]
        chosen = visible_gpus(os.environ.get("CUDA_VISIBLE_DEVICES"), uuids)
        self.devices = [(i, handles[i]) for i in chosen]
        self._unsupported: set[tuple[int, str]] = set()
        # what a GPU (a MIG slice, a container) may not report: that field is left out
        self._skip = (
            nvml.NVML_ERROR_NOT_SUPPORTED,
            nvml.NVML_ERROR_FUNCTION_NOT_FOUND,
            nvml.NVML_ERROR_NO_PERMISSION,
        )

    def _read(self, field: str, handle: Any) -> float:
        nvml = self._nvml
        if field == "util_percent":
            return float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        if field == "memory_used_mib":
            return float(nvml.nvmlDeviceGetMemoryInfo(handle).used) / MIB
        if field == "temperature_c":
            return float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        return float(nvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0  # mW

    def poll(self) -> dict[str, float]:
        """``{system/gpu{i}/FIELD: value}`` now; a field a GPU does not report is left out
        (and not asked again); any other NVML error is raised."""
        found: dict[str, float] = {}
        for index, handle in self.devices:
            for field in GPU_FIELDS:
                if (index, field) in self._unsupported:
                    continue
                try:
                    found[gpu_key(index, field)] = self._read(field, handle)
                except self._nvml.NVMLError as exc:
                    if getattr(exc, "value", None) not in self._skip:
                        raise
                    self._unsupported.add((index, field))
        return found


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _open_gpus() -> tuple[_Gpus | None, str | None]:
    """The machine's visible GPUs, or None (no NVIDIA device, all hidden, no pynvml, or
    NVML failing); and a problem to warn about, when there is one."""
    if _hides_all_gpus(os.environ.get("CUDA_VISIBLE_DEVICES")) or not nvidia_device_present():
        return None, None
    import importlib.util

    if importlib.util.find_spec("pynvml") is None:
        return None, None  # the gpu extra is not installed: no GPU figures, as documented
    nvml, why = _nvml_module()
    if nvml is None:
        if why is None:
            return None, None
        return None, f"an NVIDIA device is present but NVML does not start ({why}); no system/gpu* figures"
    try:
        gpus = _Gpus(nvml)
    except Exception as exc:
        return None, f"NVML cannot list the GPUs ({type(exc).__name__}: {exc}); no system/gpu* figures"
    return (gpus if gpus.devices else None), None


# --------------------------------------------------------------------------- CPU and memory
class _Host:
    """The machine's CPU and memory and this process's, read through psutil."""

    def __init__(self) -> None:
        import psutil  # here, in the writer thread: not with ``import trialbook``

        self._psutil = psutil
        self._process = psutil.Process()
        self._cpu = cpu_busy_total(psutil.cpu_times())

    def poll(self) -> dict[str, float]:
        return {
            RAM: float(self._psutil.virtual_memory().used) / MIB,
            RSS: float(self._process.memory_info().rss) / MIB,
        }

    def cpu_percent(self) -> float | None:
        """The machine's mean CPU use since the last call (or since made); None when no
        clock tick went by (the window is kept open)."""
        busy, total = cpu_busy_total(self._psutil.cpu_times())
        d_busy, d_total = busy - self._cpu[0], total - self._cpu[1]
        if d_total <= 0:
            return None
        self._cpu = (busy, total)
        return min(100.0, max(0.0, 100.0 * d_busy / d_total))


# --------------------------------------------------------------------------- the sampler
class Sampler:
    """The ``system/`` figures of one run, made and used in its writer thread (module
    docstring). ``started`` is the run's start (``time.perf_counter()``), where the first
    epoch's window begins; ``warn`` is told, once per source, why that source stopped."""

    def __init__(self, started: float, warn: Callable[[str], None]) -> None:
        self._since = started
        self._warn = warn
        self._last_poll = -math.inf
        self._peaks: dict[str, float] = {}
        self._sums: dict[str, tuple[float, int]] = {}
        self._host: _Host | None = None
        self._gpus: _Gpus | None = None
        self._broken = False
        try:
            self._host = _Host()
        except Exception as exc:
            warn(
                f"system/ CPU and memory figures are not recorded: psutil does not load "
                f"({type(exc).__name__}: {exc}); reinstall it (`pip install psutil`)"
            )
        try:
            self._gpus, problem = _open_gpus()
        except Exception as exc:
            problem = f"the GPUs cannot be read ({type(exc).__name__}: {exc}); no system/gpu* figures"
        if problem is not None:
            warn(problem)

    def tick(self, marks: deque[tuple[int, float]]) -> list[Point]:
        """One wake of the writer: a poll when one is due, and the points of the epochs that
        ended since the last wake (``marks``: ``(epoch, stamp)`` in order, taken from the
        left as read). Never raises."""
        ended: list[tuple[int, float]] = []
        while marks:
            ended.append(marks.popleft())
        if self._broken:
            return []
        try:
            return self._points(ended)
        except Exception as exc:  # a fault of this module: the figures stop, training goes on
            self._broken = True
            self._warn(f"the system/ figures stop ({type(exc).__name__}: {exc})")
            return []

    def _points(self, ended: list[tuple[int, float]]) -> list[Point]:
        now = time.perf_counter()
        if ended or now - self._last_poll >= POLL_INTERVAL_S:
            self._last_poll = now
            self._poll()
        if not ended:
            return []
        points: list[Point] = []
        for epoch, stamp in ended:
            points.append((epoch, {EPOCH_TIME: max(0.0, stamp - self._since)}))
            self._since = stamp
        points[-1][1].update(self._close_window())
        return points

    def _poll(self) -> None:
        if self._host is not None:
            try:
                self._add(self._host.poll())
            except Exception as exc:
                self._host = None
                self._warn(f"reading CPU and memory failed ({type(exc).__name__}: {exc}); those figures stop")
        if self._gpus is not None:
            try:
                self._add(self._gpus.poll())
            except Exception as exc:
                self._gpus = None
                self._warn(f"reading the GPUs failed ({type(exc).__name__}: {exc}); system/gpu* figures stop")

    def _add(self, readings: dict[str, float]) -> None:
        for key, value in readings.items():
            if not math.isfinite(value):
                continue
            if key.endswith(_MEANS):
                total, n = self._sums.get(key, (0.0, 0))
                self._sums[key] = (total + value, n + 1)
            else:
                self._peaks[key] = max(value, self._peaks.get(key, value))

    def _close_window(self) -> dict[str, float]:
        """The figures of the window that ends now; the next one starts empty."""
        figures: dict[str, float] = {}
        if self._host is not None:
            try:
                cpu = self._host.cpu_percent()
            except Exception as exc:
                self._host = None
                self._warn(
                    f"reading CPU use failed ({type(exc).__name__}: {exc}); CPU and memory figures stop"
                )
            else:
                if cpu is not None:
                    figures[CPU] = cpu
        figures.update(self._peaks)
        figures.update({key: total / n for key, (total, n) in self._sums.items()})
        self._peaks, self._sums = {}, {}
        return figures
