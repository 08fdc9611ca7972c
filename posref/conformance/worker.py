"""Adapters in a worker process: what the code under test does there cannot end, hang or rewrite posref.

``posref check``, the pytest plugin and ``posref matrix`` never call the
implementation under test in posref's own process.  They start a worker,
a fresh Python interpreter (``subprocess``, not ``fork``: a CUDA context
does not survive a fork) in its own session, that imports and configures
the adapter and then answers one request at a time:

* posref builds the case, sends the inputs (the worker gets its own
  copies) and the parameters, and starts the clock;
* the worker calls the adapter (:func:`~posref.conformance.adapter.invoke`),
  converts what it returns to NumPy inside the same ``try``, compares its
  inputs with copies taken before the call, and sends back a JSON header and
  the raw bytes of each output array.  posref reads arrays of plain numeric
  dtypes only, from bytes; it never unpickles anything the worker sends;
* posref computes the expected values and the budgets and compares, in its
  own process, where the adapter cannot reach them.

A worker that dies (a segfault, ``os._exit``) costs the case it was running
(``crash``, naming the signal or the exit code); one that does not answer
within the case's timeout is killed with SIGKILL, with its whole process
group, and costs that case (``timeout``).  The next case starts a fresh
worker.  So does every case after one where the adapter raised something
that may leave a process unusable: a ``BaseException`` that is not an
``Exception`` (``SystemExit``, ``KeyboardInterrupt``), or, on a device other
than the CPU, any exception but ``ValueError``, ``TypeError`` and
``NotImplementedError`` (after an illegal memory access only a new process
recovers a CUDA device).

What a worker cannot prevent: an adapter can read the golden corpus from
disk, or call posref's own spec functions, and return those numbers.
posref checks answers, not where they came from.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posref.conformance.adapter import (
    Adapter,
    AdapterError,
    Outcome,
    _import_target,
    _names,
    check_options,
    declared_dtypes,
    declared_options,
    invoke,
    load_adapter,
    options_as_json,
)

__all__ = ["AdapterHost", "LOAD_TIMEOUT", "WorkerAdapter", "start_adapter"]

#: Seconds a worker may take to start, import and configure the adapter.
LOAD_TIMEOUT = 300.0

#: Largest reply (header and arrays) posref reads from a worker, in bytes.
_MAX_REPLY = 1 << 33
#: Largest JSON header of a reply.
_MAX_HEADER = 1 << 24
#: Longest single wait in poll(): long timeouts (1e300 s) are waited for in steps.
_POLL_STEP = 3600.0
#: Exception classes after which a worker on a non-CPU device is kept.
_CLEAN = ("builtins.ValueError", "builtins.TypeError", "builtins.NotImplementedError")

_BOOTSTRAP = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
              "from posref.conformance.worker import _main; _main(sys.argv[2:])")


# -- frames -------------------------------------------------------------------------------------------
#
# A frame is an 8-byte little-endian length and that many bytes.  Requests (posref -> worker) are
# pickles: the worker trusts posref.  Replies (worker -> posref) are a 4-byte header length, a JSON
# header, then the raw bytes of the arrays the header describes.


class _Deadline(Exception):
    pass


def _wait(fd: int, event: int, deadline: float) -> None:
    poller = select.poll()
    poller.register(fd, event | select.POLLERR | select.POLLHUP)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Deadline()
        if poller.poll(min(remaining, _POLL_STEP) * 1000.0 + 1.0):
            return


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        _wait(fd, select.POLLOUT, deadline)
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[written:]


def _read_exact(fd: int, count: int, deadline: float) -> bytes:
    chunks = []
    while count:
        _wait(fd, select.POLLIN, deadline)
        try:
            chunk = os.read(fd, min(count, 1 << 20))
        except BlockingIOError:
            continue
        if not chunk:
            raise EOFError("the worker closed its end of the channel")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _encode_reply(header: dict, arrays: list[np.ndarray]) -> bytes:
    head = json.dumps(header, allow_nan=True).encode("utf-8")
    body = b"".join([struct.pack("<I", len(head)), head] + [a.tobytes() for a in arrays])
    return struct.pack("<Q", len(body)) + body


_NUMERIC = {f"{order}{kind}{size}" for order in "<>|=" for kind in "biuf" for size in "1248"}


def _dtype_of(name: str) -> np.dtype:
    """A plain numeric dtype from its name in a reply; anything else is refused."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    if name not in _NUMERIC:
        raise ValueError(f"dtype {name!r} is not a plain numeric dtype")
    dtype = np.dtype(name)
    if dtype.kind not in "biuf" or dtype.hasobject:
        raise ValueError(f"dtype {name!r} is not a plain numeric dtype")
    return dtype


@dataclass(frozen=True)
class Unreadable:
    """An output whose dtype posref does not compare (strings, complex numbers, objects)."""

    dtype: str
    shape: tuple[int, ...]


def _decode_reply(body: bytes) -> tuple[dict, list]:
    """The header and the arrays of a reply, checked; ValueError on anything malformed."""
    if len(body) < 4:
        raise ValueError("reply too short")
    (length,) = struct.unpack("<I", body[:4])
    if length > min(_MAX_HEADER, len(body) - 4):
        raise ValueError("reply header too long")
    header = json.loads(body[4:4 + length].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("reply header is not an object")
    offset = 4 + length
    arrays: list = []
    for described in header.get("arrays", []):
        if not isinstance(described, dict):
            raise ValueError("array description is not an object")
        shape = described.get("shape")
        if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                  for n in shape):
            raise ValueError(f"bad shape {shape!r}")
        if described.get("unreadable"):
            arrays.append(Unreadable(str(described.get("dtype")), tuple(shape)))
            continue
        dtype = _dtype_of(str(described.get("dtype")))
        size = int(np.prod(shape, dtype=np.int64)) if shape else 1
        nbytes = size * dtype.itemsize
        if nbytes < 0 or offset + nbytes > len(body):
            raise ValueError("reply shorter than the arrays it describes")
        arrays.append(np.frombuffer(body, dtype=dtype, count=size, offset=offset).reshape(shape))
        offset += nbytes
    if offset != len(body):
        raise ValueError("reply longer than the arrays it describes")
    return header, arrays


# -- the worker's side --------------------------------------------------------------------------------


def _describe_array(array: np.ndarray) -> tuple[dict, np.ndarray | None]:
    shape = [int(n) for n in array.shape]
    if array.dtype.name == "bfloat16":
        return {"dtype": "bfloat16", "shape": shape}, np.ascontiguousarray(array)
    if array.dtype.kind in "biuf" and not array.dtype.hasobject and array.dtype.str in _NUMERIC:
        return {"dtype": array.dtype.str, "shape": shape}, np.ascontiguousarray(array)
    return {"dtype": str(array.dtype), "shape": shape, "unreadable": True}, None


class _Worker:
    """State of the worker process: the adapters it configured, by (spec, dtype, device)."""

    def __init__(self) -> None:
        self.adapters: dict[tuple[str, str, str], Adapter] = {}

    def handle(self, request: dict) -> tuple[dict, list[np.ndarray]]:
        op = request.get("op")
        if op == "call":
            return self.call(request)
        if op == "load":
            return self.load(request), []
        if op == "describe":
            return self.describe(request), []
        return {"error": f"unknown request {op!r}"}, []

    def describe(self, request: dict) -> dict:
        spec = request["spec"]
        try:
            target = _import_target(spec)
            why_not = getattr(target, "available", lambda: None)()
            if why_not:
                return {"ok": True, "available": str(why_not), "dtypes": []}
            dtypes = declared_dtypes(spec, target)
            devices = _names(spec, target, "ADAPTER_DEVICES", ("cpu",))
            options = options_as_json(declared_options(spec, target))
        except AdapterError as exc:
            return {"ok": False, "error": str(exc)}
        except BaseException as exc:
            return {"ok": False, "error": f"importing adapter {spec!r} raised {type(exc).__name__}: {exc}"}
        return {"ok": True, "available": None, "dtypes": list(dtypes), "devices": list(devices), "options": options}

    def load(self, request: dict) -> dict:
        from posref import SPEC_FUNCTIONS

        spec, dtype, device = request["spec"], request["dtype"], request["device"]
        try:
            adapter = load_adapter(spec, dtype=dtype, device=device)
        except AdapterError as exc:
            return {"ok": False, "error": str(exc)}
        except BaseException as exc:
            return {"ok": False, "error": f"loading adapter {spec!r} raised {type(exc).__name__}: {exc}"}
        self.adapters[(spec, dtype, device)] = adapter
        functions = sorted(name for name in SPEC_FUNCTIONS if adapter.function(name) is not None)
        return {"ok": True, "name": adapter.name, "version": adapter.version, "functions": functions,
                "options": options_as_json(adapter.options)}

    def call(self, request: dict) -> tuple[dict, list[np.ndarray]]:
        adapter = self.adapters[(request["spec"], request["dtype"], request["device"])]
        function = request["function"]
        implementation = adapter.function(function)
        if implementation is None:
            outcome = Outcome("raised", error_type="NotImplementedError",
                              error_classes=("builtins.NotImplementedError",),
                              message=f"{adapter.name} no longer has {function}")
        else:
            outcome = invoke(implementation, function, request["inputs"], request["params"])
        header = {"kind": outcome.kind, "is_tuple": outcome.is_tuple, "error_type": outcome.error_type,
                  "error_classes": list(outcome.error_classes), "message": outcome.message,
                  "stage": outcome.stage, "mutated": list(outcome.mutated), "seconds": outcome.seconds,
                  "arrays": []}
        blobs = []
        for output in outcome.outputs:
            described, data = _describe_array(output)
            header["arrays"].append(described)
            if data is not None:
                blobs.append(data)
        return header, blobs


def _die_with_parent() -> None:
    """Ask Linux to kill this process when posref ends (even by SIGKILL); elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort
        pass


def _main(argv: list[str]) -> None:
    """Entry point of the worker: serve requests until posref closes the channel."""
    requests, replies = int(argv[0]), int(argv[1])
    parent = int(argv[2]) if len(argv) > 2 else None
    _die_with_parent()
    if parent is not None and os.getppid() != parent:  # posref ended before prctl took effect
        os._exit(0)
    worker = _Worker()
    forever = float("inf")
    while True:
        try:
            (length,) = struct.unpack("<Q", _read_exact(requests, 8, forever))
            request = pickle.loads(_read_exact(requests, length, forever))
        except EOFError:
            os._exit(0)
        header, arrays = worker.handle(request)
        _write_all(replies, _encode_reply(header, arrays), forever)


# -- posref's side ------------------------------------------------------------------------------------


class _Gone(Exception):
    """The worker died, closed its channel, or sent something unreadable; the message says which."""


def _exit_description(returncode: int | None) -> str:
    if returncode is None:
        return "it closed its channel to posref and was killed"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name} (signal {-returncode})"
    if returncode == 0:
        return "it ended with exit code 0: the adapter ended the process (os._exit, or sys.exit outside the call)"
    return f"it ended with exit code {returncode}"


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the worker leads its own process group
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.kill()
    except OSError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
        pass


def _close_fds(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _finalize(process: subprocess.Popen, fds: tuple[int, int]) -> None:
    _close_fds(*fds)
    if process.poll() is None:
        _kill(process)


class _Process:
    """One running worker process, from posref's side."""

    def __init__(self) -> None:
        to_worker_read, to_worker = os.pipe()
        from_worker, from_worker_write = os.pipe()
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, json.dumps([str(p) for p in sys.path]), str(to_worker_read),
                 str(from_worker_write), str(os.getpid())],
                pass_fds=(to_worker_read, from_worker_write), stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except BaseException:
            _close_fds(to_worker_read, to_worker, from_worker, from_worker_write)
            raise
        _close_fds(to_worker_read, from_worker_write)
        os.set_blocking(to_worker, False)
        os.set_blocking(from_worker, False)
        self.to_worker, self.from_worker = to_worker, from_worker
        self.configured: set[tuple[str, str, str]] = set()
        self.pending: list[tuple[str, Any]] = []  # requests sent whose replies are still to be read
        self._finalizer = weakref.finalize(self, _finalize, self.popen, (to_worker, from_worker))

    def send(self, request: dict, deadline: float) -> None:
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _write_all(self.to_worker, struct.pack("<Q", len(payload)) + payload, deadline)
        except OSError:  # EPIPE: it is gone
            raise _Gone(self._death()) from None

    def receive(self, deadline: float) -> tuple[dict, list]:
        try:
            (length,) = struct.unpack("<Q", _read_exact(self.from_worker, 8, deadline))
            if length > _MAX_REPLY:
                self.close()
                raise _Gone(f"the worker sent a reply of {length} bytes, over posref's limit; it was killed")
            body = _read_exact(self.from_worker, length, deadline)
        except (EOFError, OSError):
            raise _Gone(self._death()) from None
        try:
            return _decode_reply(body)
        except (ValueError, UnicodeDecodeError, TypeError, OverflowError) as exc:
            self.close()
            raise _Gone(f"the worker sent a reply posref cannot read ({exc}); it was killed") from None

    def _death(self) -> str:
        try:
            returncode = self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            returncode = None
        self.close()
        return f"the worker process died: {_exit_description(returncode)}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def close(self) -> None:
        self._finalizer()


def _deadline(timeout: float | None) -> float:
    return float("inf") if timeout is None else time.monotonic() + timeout


class AdapterHost:
    """A worker process for adapters, replaced whenever it dies, hangs or may be corrupt.

    One host can serve several adapters and every (dtype, device)
    configuration of each: ``posref matrix`` runs all the built-in adapters
    in one worker, so that a framework is imported once, as it was when they
    ran in posref's own process; ``posref check`` and the pytest plugin use a
    host of their own for the one adapter they check.  When a worker is
    replaced, the fresh one loads again the adapter of the next call.
    Use :meth:`configure` to get a :class:`WorkerAdapter`.
    """

    def __init__(self, *, load_timeout: float = LOAD_TIMEOUT) -> None:
        if os.name != "posix" or not hasattr(select, "poll"):
            raise AdapterError("the worker process needs a POSIX system (Linux, macOS); elsewhere run the "
                               "adapter in posref's own process (posref check --in-process)")
        self.load_timeout = load_timeout
        self._process: _Process | None = None

    # process management

    def _running(self) -> _Process:
        if self._process is None or not self._process.alive():
            if self._process is not None:
                self._process.close()
            self._process = _Process()
        return self._process

    def _retire(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None

    def close(self) -> None:
        """Stop the worker (killed, not asked: the adapter may ignore requests)."""
        self._retire()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _ask(self, spec: str, request: dict, key: tuple) -> dict:
        """Send a load or describe request (or read the reply of one sent by :meth:`prepare`)."""
        process = self._running()
        deadline = _deadline(self.load_timeout)
        try:
            if not any(k == key for k, _ in process.pending):
                process.send(request, deadline)
                process.pending.append((key, request))
            while process.pending:
                pending_key, _ = process.pending.pop(0)
                header, _ = process.receive(deadline)
                if pending_key == key:
                    return header
        except _Deadline:
            self._retire()
            raise AdapterError(f"adapter {spec!r}: the worker did not finish loading it within "
                               f"{self.load_timeout:g} s and was killed") from None
        except _Gone as exc:
            self._retire()
            raise AdapterError(f"adapter {spec!r} could not be loaded: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def prepare(self, spec: str, dtype: str = "float32", device: str = "cpu") -> None:
        """Start the worker and ask it to load the adapter, without waiting (see :meth:`configure`).

        posref builds its cases meanwhile; the reply is read by :meth:`configure`.
        """
        process = self._running()
        request = {"op": "load", "spec": spec, "dtype": dtype, "device": device}
        try:
            process.send(request, _deadline(self.load_timeout))
            process.pending.append((("load", spec, dtype, device), request))
        except (_Gone, _Deadline):
            self._retire()

    def describe(self, spec: str) -> dict:
        """Import adapter ``spec`` in the worker: ``{"available": None or why not, "dtypes": [...]}``.

        Raises
        ------
        AdapterError
            If it cannot be imported or declares its dtypes wrongly.
        """
        _check_spec(spec)
        header = self._ask(spec, {"op": "describe", "spec": spec}, ("describe", spec))
        if not header.get("ok"):
            raise AdapterError(_clean(header.get("error")))
        dtypes = header.get("dtypes", [])
        if not isinstance(dtypes, list):
            raise AdapterError(f"adapter {spec!r}: the worker's answer cannot be read")
        available = header.get("available")
        return {"available": None if available is None else _clean(available), "dtypes": [_clean(d) for d in dtypes]}

    def configure(self, spec: str, dtype: str = "float32", device: str = "cpu") -> WorkerAdapter:
        """Load adapter ``spec`` in ``dtype`` on ``device`` in the worker.

        Raises
        ------
        AdapterError
            As :func:`~posref.conformance.adapter.load_adapter` would, or when
            the worker dies or hangs while loading.
        """
        from posref.conformance.adapter import DTYPES

        _check_spec(spec)
        if dtype not in DTYPES:
            raise AdapterError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        header = self._load(spec, dtype, device)
        functions = header.get("functions")
        if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
            raise AdapterError(f"adapter {spec!r}: the worker's answer cannot be read")
        return WorkerAdapter(target=None, name=_clean(header.get("name", spec)),
                             version=_clean(header.get("version", "unknown")), dtype=dtype, device=device,
                             source=spec, options=_options_of(spec, header), functions=frozenset(functions),
                             host=self)

    def _load(self, spec: str, dtype: str, device: str) -> dict:
        header = self._ask(spec, {"op": "load", "spec": spec, "dtype": dtype, "device": device},
                           ("load", spec, dtype, device))
        if not header.get("ok"):
            raise AdapterError(_clean(header.get("error")))
        self._running().configured.add((spec, dtype, device))
        return header

    # calls

    def call(self, adapter: WorkerAdapter, function: str, inputs: dict, params: dict,
             timeout: float | None) -> Outcome:
        """Run one call in the worker; a fresh worker is started (and the adapter loaded) if needed."""
        key = (adapter.source, adapter.dtype, adapter.device)
        process = self._process
        if process is None or not process.alive() or key not in process.configured:
            try:
                self._load(*key)
            except AdapterError as exc:
                return Outcome("crash", message=f"a fresh worker could not load the adapter again: {exc}")
            process = self._process
        request = {"op": "call", "spec": adapter.source, "dtype": adapter.dtype, "device": adapter.device,
                   "function": function, "inputs": dict(inputs), "params": dict(params)}
        start = time.perf_counter()
        deadline = _deadline(timeout)
        try:
            process.send(request, deadline)
            header, arrays = process.receive(deadline)
        except _Deadline:
            self._retire()
            return Outcome("timeout", message=f"no answer within {timeout:g} s; the worker was killed (SIGKILL) "
                                              "and a fresh one takes the next case",
                           seconds=time.perf_counter() - start)
        except _Gone as exc:
            self._retire()
            return Outcome("crash", message=f"{exc}; a fresh worker takes the next case",
                           seconds=time.perf_counter() - start)
        seconds = time.perf_counter() - start
        try:
            outcome = Outcome(
                kind=str(header["kind"]), outputs=arrays, is_tuple=bool(header.get("is_tuple")),
                error_type=_clean(header.get("error_type", "")),
                error_classes=tuple(str(c) for c in header.get("error_classes", [])),
                message=_clean(header.get("message", "")), stage=str(header.get("stage", "call")),
                mutated=tuple(_clean(m) for m in header.get("mutated", [])), seconds=seconds,
            )
            if outcome.kind not in ("returned", "raised"):
                raise ValueError(f"unknown kind {outcome.kind!r}")
        except (KeyError, ValueError, TypeError) as exc:
            self._retire()
            return Outcome("crash", message=f"the worker sent a reply posref cannot read ({exc}); it was killed",
                           seconds=seconds)
        if outcome.kind == "raised" and (
            "builtins.Exception" not in outcome.error_classes
            or (adapter.device != "cpu" and not any(c in outcome.error_classes for c in _CLEAN))
        ):
            self._retire()  # the process may be unusable: the next case gets a fresh one
        return outcome


def _check_spec(spec) -> None:
    if not isinstance(spec, str) or not spec:
        raise AdapterError(f"adapter must be a non-empty string, got {spec!r}")


def _options_of(spec: str, header: dict) -> dict:
    """The ``ADAPTER_OPTIONS`` declaration in a describe or load reply, checked again on posref's side."""
    try:
        return check_options(spec, header.get("options") or {})
    except AdapterError as exc:
        raise AdapterError(f"adapter {spec!r}: the worker's answer cannot be read ({_clean(exc)})") from None


def _clean(value) -> str:
    """A string from a worker's reply, cut to length, with no lone surrogates."""
    text = str(value)[:4000]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(eq=False)
class WorkerAdapter(Adapter):
    """An adapter loaded in a worker process (see :class:`AdapterHost`); calls go to that process."""

    functions: frozenset = field(default_factory=frozenset)
    host: AdapterHost | None = None
    owns_host: bool = False

    def function(self, name: str):
        """``name`` when the adapter implements it (the callable lives in the worker), else None."""
        return name if name in self.functions else None

    def call(self, function: str, inputs, params, *, timeout: float | None = None) -> Outcome:
        """Call ``function`` in the worker; it is killed after ``timeout`` seconds."""
        return self.host.call(self, function, inputs, params, timeout)

    def close(self) -> None:
        """Stop the worker if this adapter started it (:func:`start_adapter`)."""
        if self.owns_host and self.host is not None:
            self.host.close()


def start_adapter(spec: str, *, dtype: str = "float32", device: str = "cpu",
                  load_timeout: float = LOAD_TIMEOUT) -> WorkerAdapter:
    """Load the adapter named by ``spec`` in a worker process (close it, or use ``with``).

    Raises
    ------
    AdapterError
        As :func:`~posref.conformance.adapter.load_adapter`, or when the
        worker dies or hangs while loading.
    """
    host = AdapterHost(load_timeout=load_timeout)
    try:
        adapter = host.configure(spec, dtype, device)
    except BaseException:
        host.close()
        raise
    adapter.owns_host = True
    return adapter
