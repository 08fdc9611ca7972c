"""The committed conformance matrix is what the built-in adapters give today."""

import importlib
import pathlib

import pytest

from posref.cli import main
from posref.conformance.adapter import BUILTIN

ROOT = pathlib.Path(__file__).resolve().parents[1]
GPU_ONLY = {"liger_kernel", "flash_attn"}


def _unavailable():
    missing = {}
    for name, module in BUILTIN.items():
        if name in GPU_ONLY or name == "reference":
            continue
        try:
            why_not = importlib.import_module(module).available()
        except Exception as exc:  # pragma: no cover - reported below
            why_not = str(exc)
        if why_not:
            missing[name] = why_not
    return missing


def test_matrix_is_current(monkeypatch, capsys):
    missing = _unavailable()
    if missing:
        pytest.skip("adapter libraries not installed (run conformance/install-adapters.sh): "
                    + "; ".join(f"{k}: {v}" for k, v in sorted(missing.items())))
    monkeypatch.chdir(ROOT)
    code = main(["matrix", "--check", "--no-progress"])
    assert code == 0, capsys.readouterr().out[-4000:]


def test_matrix_lists_every_cpu_adapter():
    text = (ROOT / "conformance" / "matrix.md").read_text(encoding="utf-8")
    for name in set(BUILTIN) - GPU_ONLY - {"reference"}:
        assert f"| {name} |" in text, name
    for name in GPU_ONLY:
        assert f"**{name}**" in text, name
