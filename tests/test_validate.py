"""The shared argument checks: each accepts what it should and names the parameter otherwise."""

import numpy as np
import pytest

from posref._validate import (
    ensure_array,
    ensure_bool,
    ensure_choice,
    ensure_int,
    ensure_positions,
    ensure_real,
    ensure_same_shape,
)


class TestEnsureInt:
    def test_accepts_python_and_numpy_integers(self):
        assert ensure_int("dim", 8) == 8
        assert ensure_int("dim", np.int32(8)) == 8
        assert type(ensure_int("dim", np.int64(8))) is int

    @pytest.mark.parametrize("value", [8.0, "8", None, True, np.float64(8)])
    def test_rejects_non_integers_with_type_error(self, value):
        with pytest.raises(TypeError, match=r"^dim must be a positive even integer, got dim="):
            ensure_int("dim", value, minimum=1, even=True)

    def test_message_shape(self):
        with pytest.raises(ValueError, match=r"^dim must be a positive even integer, got dim=7$"):
            ensure_int("dim", 7, minimum=1, even=True)
        with pytest.raises(ValueError, match=r"^num_heads must be a positive integer, got num_heads=0$"):
            ensure_int("num_heads", 0, minimum=1)
        with pytest.raises(ValueError, match=r"in \[2, 10\], got k=11"):
            ensure_int("k", 11, minimum=2, maximum=10)


class TestEnsureReal:
    def test_bounds(self):
        assert ensure_real("base", 2) == 2.0
        with pytest.raises(ValueError, match=r"^base must be a finite real number > 1.0, got base=1.0$"):
            ensure_real("base", 1.0, exclusive_minimum=1.0)
        with pytest.raises(ValueError, match="base must be a finite real number"):
            ensure_real("base", float("nan"))
        with pytest.raises(ValueError, match="got s=-1.0"):
            ensure_real("s", -1.0, minimum=0.0)

    @pytest.mark.parametrize("value", ["2", None, True, 1j, [2.0]])
    def test_type(self, value):
        with pytest.raises(TypeError, match="^base must be a finite real number"):
            ensure_real("base", value)


def test_ensure_bool_and_choice():
    assert ensure_bool("causal", np.bool_(True)) is True
    with pytest.raises(TypeError, match="causal must be True or False, got causal=1"):
        ensure_bool("causal", 1)
    assert ensure_choice("layout", "half", ("half", "interleaved")) == "half"
    with pytest.raises(ValueError, match=r"^layout must be one of 'half', 'interleaved', got layout='neox'$"):
        ensure_choice("layout", "neox", ("half", "interleaved"))
    with pytest.raises(ValueError, match="layout must be one of"):
        ensure_choice("layout", ["half"], ("half",))


class TestEnsureArray:
    def test_converts_to_float64(self):
        out = ensure_array("x", [[1, 2]], ndim=2)
        assert out.dtype == np.float64 and out.shape == (1, 2)

    def test_rank_and_last_dim(self):
        with pytest.raises(ValueError, match=r"^x must be a 2-D array, got shape \(3,\)$"):
            ensure_array("x", [1, 2, 3], ndim=2)
        with pytest.raises(ValueError, match="at least 2 dimensions"):
            ensure_array("x", [1, 2, 3], min_ndim=2)
        with pytest.raises(ValueError, match=r"last dimension 4, got shape \(1, 3\)"):
            ensure_array("x", [[1, 2, 3]], last_dim=4)
        with pytest.raises(ValueError, match="must not be empty"):
            ensure_array("x", np.zeros((0, 2)), allow_empty=False)

    @pytest.mark.parametrize("bad", [[1.0, np.nan], [np.inf]])
    def test_non_finite(self, bad):
        with pytest.raises(ValueError, match="x must contain only finite values"):
            ensure_array("x", bad)

    @pytest.mark.parametrize("bad", ["abc", None, [True, False], [1 + 2j], [[1, 2], [3]]])
    def test_types(self, bad):
        with pytest.raises(TypeError, match="^x must be a"):
            ensure_array("x", bad)


class TestEnsurePositions:
    def test_integer_valued_floats_are_accepted(self):
        out = ensure_positions("positions", [0.0, 3.0])
        assert out.dtype == np.int64 and out.tolist() == [0, 3]

    def test_fraction_rejected_when_integers_required(self):
        with pytest.raises(ValueError, match="positions must hold non-negative integers, got a non-integer value 0.5"):
            ensure_positions("positions", [0.0, 0.5])

    def test_negative(self):
        with pytest.raises(ValueError, match="positions must hold non-negative integers, got minimum -1"):
            ensure_positions("positions", [-1, 2])
        assert ensure_positions("relative_position", [-1, 2], nonnegative=False).tolist() == [-1, 2]

    def test_real_positions(self):
        out = ensure_positions("positions", [0.5, 2], integer=False)
        assert out.dtype == np.float64
        with pytest.raises(ValueError, match="finite"):
            ensure_positions("positions", [np.nan], integer=False)

    def test_huge_unsigned(self):
        with pytest.raises(ValueError, match="below 2\\*\\*63"):
            ensure_positions("positions", np.array([2**64 - 1], dtype=np.uint64))


def test_ensure_same_shape():
    ensure_same_shape(("a", "b"), (np.zeros(2), np.zeros(2)))
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got a\(2,\), b\(3,\)"):
        ensure_same_shape(("a", "b"), (np.zeros(2), np.zeros(3)))
