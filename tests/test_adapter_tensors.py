"""posref.adapters.tensors: exact conversions to and from torch and JAX, bfloat16 included."""

import ml_dtypes
import numpy as np
import pytest

from posref.adapters import tensors

BF16 = np.dtype(ml_dtypes.bfloat16)


def every_bfloat16():
    """Every finite bfloat16 value, from its 16-bit patterns (exact integer enumeration)."""
    bits = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16)
    values = bits.view(BF16)
    return values[np.isfinite(values.astype(np.float32))]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_torch_round_trip_is_exact(dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(dtype)
    t = tensors.to_torch(x)
    assert t.dtype == getattr(torch, dtype)
    back = tensors.from_torch(t)
    assert back.dtype == x.dtype and np.array_equal(back, x)


def test_torch_bfloat16_round_trip_is_exact_for_every_value():
    torch = pytest.importorskip("torch")
    x = every_bfloat16()
    t = tensors.to_torch(x)
    assert t.dtype == torch.bfloat16
    back = tensors.from_torch(t)
    assert back.dtype == BF16
    assert np.array_equal(back.view(np.uint16), x.view(np.uint16))


def test_torch_integers_become_int64_and_dtype_casts():
    torch = pytest.importorskip("torch")
    assert tensors.to_torch(np.array([0, 5], dtype=np.int32)).dtype == torch.int64
    assert tensors.to_torch(np.ones(2), "bfloat16").dtype == torch.bfloat16
    assert tensors.from_torch(torch.ones(2, dtype=torch.bfloat16), "float32").dtype == np.float32


def test_jax_bfloat16_round_trip_is_exact_for_every_value():
    jnp = pytest.importorskip("jax.numpy")
    x = every_bfloat16()
    j = tensors.to_jax(x)
    assert j.dtype == jnp.bfloat16
    back = tensors.from_jax(j)
    assert back.dtype == BF16 and np.array_equal(back.view(np.uint16), x.view(np.uint16))


def test_jax_float64_without_x64_is_refused_not_rounded():
    jax = pytest.importorskip("jax")
    if jax.config.jax_enable_x64:
        pytest.skip("x64 is enabled in this process")
    with pytest.raises(ValueError, match="jax_enable_x64"):
        tensors.to_jax(np.ones(2))


@pytest.mark.parametrize("call, error, words", [
    (lambda: tensors.to_torch(np.ones(2), "float8"), ValueError, "dtype must be None or one of"),
    (lambda: tensors.to_torch(np.array(["a"])), TypeError, "array must hold"),
    (lambda: tensors.to_torch(np.ones(2), device=0), TypeError, "device must be a str"),
    (lambda: tensors.from_torch(np.ones(2)), TypeError, "tensor must be a torch.Tensor"),
])
def test_bad_arguments_are_named(call, error, words):
    pytest.importorskip("torch")
    with pytest.raises(error, match=words):
        call()
