"""Adapters that end, hang, fool or rewrite the judge: the battery of ``posref check``.

Each object here is an adapter, named in the tests as ``<this module>:<NAME>``.
They answer ``rope_frequencies`` correctly (with posref's own spec) except
for the case of ``dim`` 64 and ``base`` 500000 (``rope_frequencies.d64.b500000``,
the third of the seven ``rope_frequencies`` cases in id order), where they do
their hostile act; the cases after it show that the run goes on.

Some acts leave evidence for the tests: ``POSREF_HOSTILE_PIDFILE`` receives
the worker's process id (to check that it was killed),
``POSREF_HOSTILE_CALLS`` one line per call (to interrupt a run mid-way).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

import numpy as np

from posref.alibi import alibi_slopes as _spec_alibi_slopes
from posref.rope import rope_frequencies as _spec_frequencies

#: The ``dim`` and ``base`` of the case where the hostile act happens.
TRIGGER_DIM, TRIGGER_BASE = 64, 500_000.0


def _note_pid() -> None:
    path = os.environ.get("POSREF_HOSTILE_PIDFILE")
    if path:
        with open(path, "w") as handle:
            handle.write(str(os.getpid()))


class _Correct:
    ADAPTER_NAME = "hostile"
    ADAPTER_VERSION = "0"
    ADAPTER_DTYPES = ("float64", "float32")

    @staticmethod
    def rope_frequencies(dim, /, *, base=10_000.0):
        return _spec_frequencies(dim, base=base)


def _on_trigger(name: str, act) -> type:
    def rope_frequencies(dim, /, *, base=10_000.0):
        if dim == TRIGGER_DIM and base == TRIGGER_BASE:
            result = act()
            if result is not None:
                return result
        return _spec_frequencies(dim, base=base)

    return type(name, (_Correct,), {"rope_frequencies": staticmethod(rope_frequencies)})


# -- the run ends or lies ---------------------------------------------------------------------------------------

def _exit_zero():
    os._exit(0)


def _sys_exit():
    sys.exit(0)


def _segfault():
    ctypes.string_at(0)


def _keyboard_interrupt():
    raise KeyboardInterrupt


def _close_stdout():
    sys.stdout.flush()
    os.close(1)


def _spin_ignoring_alarm():
    _note_pid()
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        pass


def _swallow_everything():
    _note_pid()
    while True:
        try:
            time.sleep(0.05)
        except BaseException:
            pass


def _loop_in_c():
    _note_pid()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGINT, signal.SIGTERM})
    libc = ctypes.CDLL(None)
    while True:
        libc.sleep(60)


def _late():
    time.sleep(1.6)  # the tests use --timeout 1


class _CudaLikeTensor:
    """A tensor whose read-back fails, as after an illegal memory access."""

    def __array__(self, *args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def detach(self):
        return self

    def cpu(self):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def _unreadable_tensor():
    return _CudaLikeTensor()


def _huge():
    return np.full(TRIGGER_DIM // 2, 1e308)


def _reply_channel() -> int:
    """The worker's reply pipe (its fd is on the worker's command line), as a hostile adapter finds it."""
    return int(sys.argv[3])


def _garbage_on_the_channel():
    os.write(_reply_channel(), b"\xff" * 16)


def _pickle_on_the_channel():
    import pickle
    import struct

    payload = pickle.dumps({"kind": "returned", "arrays": [np.zeros(32)]})
    os.write(_reply_channel(), struct.pack("<Q", len(payload)) + payload)


EXIT_ZERO = _on_trigger("ExitZero", _exit_zero)
GARBAGE_ON_THE_CHANNEL = _on_trigger("GarbageOnTheChannel", _garbage_on_the_channel)
PICKLE_ON_THE_CHANNEL = _on_trigger("PickleOnTheChannel", _pickle_on_the_channel)
SYS_EXIT = _on_trigger("SysExit", _sys_exit)
SEGFAULT = _on_trigger("Segfault", _segfault)
KEYBOARD_INTERRUPT = _on_trigger("KeyboardInterruptAdapter", _keyboard_interrupt)
CLOSE_STDOUT = _on_trigger("CloseStdout", _close_stdout)
SPIN_IGNORING_ALARM = _on_trigger("SpinIgnoringAlarm", _spin_ignoring_alarm)
SWALLOW_EVERYTHING = _on_trigger("SwallowEverything", _swallow_everything)
LOOP_IN_C = _on_trigger("LoopInC", _loop_in_c)
LATE = _on_trigger("Late", _late)
UNREADABLE_TENSOR = _on_trigger("UnreadableTensor", _unreadable_tensor)
HUGE = _on_trigger("Huge", _huge)


class SLOW(_Correct):
    """Correct, 0.3 s per call, one line per call in ``POSREF_HOSTILE_CALLS``: a run to interrupt."""

    @staticmethod
    def alibi_slopes(num_heads, /, *, rule="paper", max_bias=8.0):
        time.sleep(0.3)
        path = os.environ.get("POSREF_HOSTILE_CALLS")
        if path:
            with open(path, "a") as handle:
                handle.write(f"{num_heads}\n")
        return _spec_alibi_slopes(num_heads, max_bias=max_bias)


# -- the judge can be fooled ------------------------------------------------------------------------------------

class TWO_OUTPUTS(_Correct):
    """``(r, r)`` for a function of one output."""

    @staticmethod
    def rope_frequencies(dim, /, *, base=10_000.0):
        r = _spec_frequencies(dim, base=base)
        return r, r


class NONE_FACTORY(_Correct):
    @staticmethod
    def make_adapter(*, dtype, device):
        return None


def _rejecting_with(error: type[BaseException]) -> type:
    def rope_frequencies(dim, /, *, base=10_000.0):
        if dim % 2 or base <= 1:  # the invalid cases: odd dim, base 1
            raise error("that input is invalid")
        return _spec_frequencies(dim, base=base)

    return type(f"Rejects{error.__name__}", (_Correct,), {"rope_frequencies": staticmethod(rope_frequencies)})


REJECTS_WITH_MEMORY_ERROR = _rejecting_with(MemoryError)
REJECTS_WITH_RUNTIME_ERROR = _rejecting_with(RuntimeError)


class MUTATES_INPUTS(_Correct):
    """Scales its input in place and returns zeros: the expected values must not follow."""

    @staticmethod
    def apply_rope(x, positions, /, **options):
        x *= 1e30
        return np.zeros_like(x)


class PATCHES_COMPARE(_Correct):
    """Replaces posref's comparison (in whatever process it runs in) with one that always passes."""

    @staticmethod
    def apply_rope(x, positions, /, **options):
        import posref.conformance.compare as compare_module
        import posref.conformance.runner as runner_module

        def always(actual, expected, budget, dtype):
            return compare_module.Comparison(True, "", 0.0, 0.0, 0.0, 0.0, None, None, None, None)

        runner_module.compare = always
        compare_module.compare = always
        return np.zeros_like(x)


class PATCHES_SPEC(_Correct):
    """Replaces the registry's spec function with one that returns zeros, and returns zeros."""

    @staticmethod
    def apply_rope(x, positions, /, **options):
        import dataclasses

        import posref
        import posref.rope
        from posref._spec import SPEC_FUNCTIONS, spec_functions

        spec_functions()

        def zeros(x, positions, /, **options):
            return np.zeros_like(np.asarray(x, dtype=np.float64))

        entry = SPEC_FUNCTIONS["apply_rope"]
        try:
            SPEC_FUNCTIONS["apply_rope"] = dataclasses.replace(entry, function=zeros)
        except TypeError:
            object.__setattr__(entry, "function", zeros)
        posref.rope.apply_rope = zeros
        posref.apply_rope = zeros
        return np.zeros_like(x)


class READS_FRAMES(_Correct):
    """Looks for posref's expected values in its callers' frames and returns them."""

    @staticmethod
    def apply_rope(x, positions, /, **options):
        frame = sys._getframe(1)
        while frame is not None:
            expected = frame.f_locals.get("expected")
            if isinstance(expected, dict) and "output" in expected:
                return expected["output"]
            frame = frame.f_back
        return np.zeros_like(x)


# -- silent success ---------------------------------------------------------------------------------------------

class STRING_DTYPES(_Correct):
    ADAPTER_DTYPES = "float32"


# -- the worker's own rules -------------------------------------------------------------------------------------

class SLOW_FACTORY(_Correct):
    """Takes a minute to configure: loading is bounded too."""

    @staticmethod
    def make_adapter(*, dtype, device):
        time.sleep(60)


class RECORDS_PIDS(_Correct):
    """Appends its process id to ``POSREF_HOSTILE_CALLS`` on each call; raises RuntimeError at the trigger."""

    ADAPTER_DEVICES = ("cpu", "accelerator")

    @staticmethod
    def rope_frequencies(dim, /, *, base=10_000.0):
        with open(os.environ["POSREF_HOSTILE_CALLS"], "a") as handle:
            handle.write(f"{os.getpid()}\n")
        if dim == TRIGGER_DIM and base == TRIGGER_BASE:
            raise RuntimeError("device-side assert triggered")
        return _spec_frequencies(dim, base=base)


class ODD_OUTPUTS(_Correct):
    """Outputs posref must not unpickle or misread: strings, complex numbers, bfloat16, objects."""

    @staticmethod
    def rope_frequencies(dim, /, *, base=10_000.0):
        r = _spec_frequencies(dim, base=base)
        if dim == 128:
            return r.astype(str)
        if dim == 2:
            return r.astype(np.complex128)
        if dim == 80:
            import ml_dtypes

            return r.astype(ml_dtypes.bfloat16)
        if dim == 96:
            return np.array([object()] * r.size, dtype=object)
        return r
