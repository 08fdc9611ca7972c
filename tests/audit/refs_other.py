r"""Independent mpmath references of the relative, bias and attention families.

Each entry of :data:`REFERENCES` is ``ref(inputs, params, output_name, index)``
and returns the exact value (an ``mpmath.mpf`` at the caller's working
precision; the accuracy audit runs at 60 digits) of one element of the
spec function's output, or a Python ``int`` for integer outputs (buckets,
indices).  Masked entries (``-inf`` in the spec) are ``mpmath.mpf("-inf")``.

The formulas are written from the mathematics in the spec docstrings and
the papers, never by calling posref: float inputs and float parameters are
taken as the exact binary64 numbers they hold, constants such as
:math:`\sqrt{D}` are the exact mathematical ones, sums and dot products are
accumulated exactly (``mpmath.fdot``/``fsum`` add exact products and round
once), and integer results (T5 and DeBERTa buckets, Shaw indices) are
decided in integer arithmetic.

Families covered: alibi, attention (``attention`` only), cope, cpe (``peg``),
deberta, fire, kerple, nope, sandwich, shaw, t5, transformer_xl.

Per-row quantities shared by many elements (an attention row's softmax, a
CoPE row's gates, FIRE's hidden layer at one pair) are memoised under a key
made of a digest of the arrays involved, so a case's 100-250 sampled
elements cost one row evaluation each at most.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Callable

import mpmath
import numpy as np

__all__ = ["REFERENCES"]

NEG_INF = mpmath.mpf("-inf")

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

_MEMO: OrderedDict = OrderedDict()
_MEMO_SIZE = 4096


def _memo(key, compute):
    """Small LRU memo; the key includes the working precision."""
    key = (mpmath.mp.prec, key)
    try:
        value = _MEMO[key]
        _MEMO.move_to_end(key)
        return value
    except KeyError:
        pass
    value = compute()
    _MEMO[key] = value
    if len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return value


def _fp(array) -> tuple | None:
    """A content fingerprint of an array (or None)."""
    if array is None:
        return None
    a = np.ascontiguousarray(np.asarray(array))
    return (a.dtype.str, a.shape, hashlib.blake2b(a.tobytes(), digest_size=16).digest())


def _mpf(x) -> mpmath.mpf:
    """The exact value of a binary64 float or an integer."""
    if isinstance(x, (bool, np.bool_)):
        return mpmath.mpf(int(x))
    if isinstance(x, (int, np.integer)):
        return mpmath.mpf(int(x))
    return mpmath.mpf(float(x))


def _vec(array) -> list:
    """Exact mpf values of a 1-D (or any) array, flattened."""
    return [_mpf(x) for x in np.asarray(array).ravel()]


def _arg(inputs, params, name, default=None):
    """An argument given either as a case input (array) or a parameter."""
    if name in inputs:
        return inputs[name]
    return params.get(name, default)


def _bidx(index: tuple, shape: tuple) -> tuple:
    """Index into an operand of ``shape`` broadcast against an index of a larger array (trailing alignment)."""
    n, m = len(index), len(shape)
    return tuple(0 if shape[d] == 1 else index[n - m + d] for d in range(m))


def _position_value(array, i):
    return _mpf(np.asarray(array).reshape(-1)[i])


def _int_position(array, i) -> int:
    value = np.asarray(array).reshape(-1)[i]
    if isinstance(value, (np.floating, float)):
        f = float(value)
        if f != int(f):
            raise ValueError("integer position expected")
        return int(f)
    return int(value)


def _inv_sqrt(n) -> mpmath.mpf:
    return 1 / mpmath.sqrt(mpmath.mpf(n))


# --------------------------------------------------------------------------
# ALiBi
# --------------------------------------------------------------------------


def _alibi_slope(n: int, h: int, rule: str, max_bias: mpmath.mpf) -> mpmath.mpf:
    """Slope of head ``h`` (0-based) of ``n`` heads (Press et al., section 3; MPT gen_slopes)."""
    if rule == "paper":
        c = 1
        while 2 * c <= n:
            c *= 2  # c = 2**floor(log2 n)
        if h < c:
            return mpmath.power(2, -max_bias * (h + 1) / c)
        j = h - c  # extra heads: every other slope of the series for 2c, starting with the first
        return mpmath.power(2, -max_bias * (2 * j + 1) / (2 * c))
    if rule == "mpt":
        big_n = 1
        while big_n < n:
            big_n *= 2  # N = 2**ceil(log2 n)
        ks = list(range(1, big_n + 1))
        if big_n != n:
            ks = (ks[1::2] + ks[0::2])[:n]  # s_2, s_4, ..., s_N, s_1, s_3, ...
        return mpmath.power(2, -mpmath.mpf(ks[h]) * max_bias / big_n)
    raise ValueError(f"unknown rule {rule!r}")


def ref_alibi_slopes(inputs, params, output_name, index):
    n = int(params["num_heads"])
    # the spec has one rule (its deprecated ``rule`` defaults to None); both derivations are kept here
    return _alibi_slope(n, int(index[0]), params.get("rule") or "paper", _mpf(params.get("max_bias", 8.0)))


def ref_alibi_bias(inputs, params, output_name, index):
    h, t, s = (int(i) for i in index)
    slopes = inputs["slopes"]
    qp = _arg(inputs, params, "query_positions")
    kp = _arg(inputs, params, "key_positions")
    form = params.get("form", "distance")
    causal = bool(params.get("causal", True))
    scale = _mpf(params.get("scale", 1.0))
    pq, pk = _position_value(qp, t), _position_value(kp, s)
    r = pk - pq  # key minus query
    if causal and r > 0:
        return NEG_INF
    if form == "distance":
        linear = r
    elif form == "symmetric":
        linear = -abs(r)
    elif form == "key_index":
        linear = pk
    elif form == "last_key_anchored":
        kvals = np.asarray(kp).reshape(-1)
        linear = pk - (_mpf(kvals.max()) if kvals.size else mpmath.mpf(0))
    else:
        raise ValueError(form)
    return scale * _mpf(np.asarray(slopes).reshape(-1)[h]) * linear


# --------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------


def _attention_row(inputs, params, row: tuple):
    """(weights, visible, row data) of one query row ``row = (*lead, H, t)``."""
    q = np.asarray(inputs["q"])
    k = np.asarray(inputs["k"])
    bias = _arg(inputs, params, "bias")
    rel_k = _arg(inputs, params, "relative_keys")
    qp = _arg(inputs, params, "query_positions")
    kp = _arg(inputs, params, "key_positions")
    causal = bool(params.get("causal", False))
    scale = params.get("scale")
    fully_masked = params.get("fully_masked", "raise")
    key = ("attention_row", _fp(q), _fp(k), _fp(bias), _fp(rel_k), _fp(qp), _fp(kp), causal, scale,
           fully_masked, row)

    def compute():
        t_count, s_count, d = q.shape[-2], k.shape[-2], q.shape[-1]
        t = row[-1]
        lead = row[:-1]
        s_scale = _inv_sqrt(d) if scale is None else _mpf(scale)
        q_row = _vec(q[lead + (t,)])
        qpos = (np.arange(s_count - t_count, s_count) if qp is None else np.asarray(qp).reshape(-1))
        kpos = (np.arange(s_count) if kp is None else np.asarray(kp).reshape(-1))
        b = None if bias is None else np.asarray(bias, dtype=np.float64)
        logits, visible = [], []
        for j in range(s_count):
            vis = True
            if causal and _mpf(kpos[j]) > _mpf(qpos[t]):
                vis = False
            bj = mpmath.mpf(0)
            if b is not None:
                bval = float(b[_bidx(lead + (t, j), b.shape)]) if b.ndim else float(b)
                if bval == -np.inf:
                    vis = False
                else:
                    bj = mpmath.mpf(bval)
            k_row = _vec(k[lead + (j,)])
            if rel_k is not None:
                a_row = _vec(np.asarray(rel_k)[t, j])
                dot = mpmath.fdot(q_row + q_row, k_row + a_row)  # q.k + q.a^K, exactly
            else:
                dot = mpmath.fdot(q_row, k_row)
            logits.append(s_scale * dot + bj)
            visible.append(vis)
        shown = [l for l, v in zip(logits, visible) if v]
        if not shown:
            if fully_masked == "zeros":
                return [mpmath.mpf(0)] * s_count
            raise ValueError("fully masked row")
        m = max(shown)
        e = [mpmath.exp(l - m) if v else mpmath.mpf(0) for l, v in zip(logits, visible)]
        total = mpmath.fsum(e)
        return [x / total for x in e]

    return _memo(key, compute)


def ref_attention(inputs, params, output_name, index):
    index = tuple(int(i) for i in index)
    row = index[:-1]
    weights = _attention_row(inputs, params, row)
    if output_name == "output_1":  # the weights (return_weights=True)
        return weights[index[-1]]
    if output_name not in ("output", "output_0"):
        raise KeyError(output_name)
    v = np.asarray(inputs["v"])
    rel_v = _arg(inputs, params, "relative_values")
    lead, t, c = row[:-1], row[-1], index[-1]
    s_count = v.shape[-2]
    terms_a, terms_b = [], []
    for j in range(s_count):
        w = weights[j]
        terms_a.append(w)
        terms_b.append(_mpf(v[lead + (j, c)]))
        if rel_v is not None:
            terms_a.append(w)
            terms_b.append(_mpf(np.asarray(rel_v)[t, j, c]))
    return mpmath.fdot(terms_a, terms_b)


# --------------------------------------------------------------------------
# CoPE
# --------------------------------------------------------------------------


def _cope_row(logits, row: tuple):
    """Contextual positions p_{ij} of one query row, j = 0 .. S-1 (Golovneva et al.)."""
    logits = np.asarray(logits)
    key = ("cope_row", _fp(logits), row)

    def compute():
        t_count, s_count = logits.shape[-2:]
        i = row[-1]
        last = s_count - t_count + i  # the query's own position; keys 0..last are causal
        gates = [mpmath.mpf(0)] * s_count
        for j in range(last + 1):
            x = _mpf(logits[row + (j,)])
            gates[j] = 1 / (1 + mpmath.exp(-x))  # sigma(x)
        p = [mpmath.mpf(0)] * s_count
        for j in range(last + 1):
            p[j] = mpmath.fsum(gates[j:last + 1])
        return p

    return _memo(key, compute)


def ref_cope_positions(inputs, params, output_name, index):
    index = tuple(int(i) for i in index)
    return _cope_row(inputs["logits"], index[:-1])[index[-1]]


def ref_cope_bias(inputs, params, output_name, index):
    index = tuple(int(i) for i in index)
    q = np.asarray(inputs["q"])
    table = np.asarray(inputs["position_embeddings"])
    row, j = index[:-1], index[-1]
    p = _cope_row(inputs["logits"], row)[j]
    num_positions = table.shape[0]
    p_hat = min(p, mpmath.mpf(num_positions - 1))
    lo = int(mpmath.floor(p_hat))
    hi = int(mpmath.ceil(p_hat))
    w = p_hat - lo
    q_row = _vec(q[row])
    low = mpmath.fdot(q_row, _vec(table[lo]))
    high = low if hi == lo else mpmath.fdot(q_row, _vec(table[hi]))
    return (1 - w) * low + w * high


# --------------------------------------------------------------------------
# CPE (PEG)
# --------------------------------------------------------------------------


def ref_peg(inputs, params, output_name, index):
    b, n, c = (int(i) for i in index)
    tokens = np.asarray(inputs["tokens"])
    weight = np.asarray(inputs["weight"])
    bias = np.asarray(inputs["bias"])
    rows, cols = (int(x) for x in params["grid_shape"])
    start = 1 if params.get("class_token", False) else 0
    if n < start:
        return _mpf(tokens[b, n, c])  # the class token passes through
    r, s = divmod(n - start, cols)
    ksize = weight.shape[-1]
    p = ksize // 2
    a_terms, b_terms = [], []
    for u in range(ksize):
        for v in range(ksize):
            rr, ss = r + u - p, s + v - p
            if 0 <= rr < rows and 0 <= ss < cols:  # zero padding outside the grid
                a_terms.append(_mpf(weight[c, 0, u, v]))
                b_terms.append(_mpf(tokens[b, start + rr * cols + ss, c]))
    a_terms += [mpmath.mpf(1), mpmath.mpf(1)]
    b_terms += [_mpf(tokens[b, n, c]), _mpf(bias[c])]
    return mpmath.fdot(a_terms, b_terms)


# --------------------------------------------------------------------------
# DeBERTa
# --------------------------------------------------------------------------


def _deberta_bucket(r: int, bucket_size: int, max_position: int) -> int:
    """sign(r) (m + ceil((m-1) ln(|r|/m) / ln((P-1)/m))) for |r| > m, else r; the ceiling exact."""
    mid = bucket_size // 2
    a = abs(r)
    if a <= mid:
        return r
    top = max_position - 1
    # ceil(x) with x = (mid-1) ln(a/mid)/ln(top/mid) is the least integer n with
    # n ln(top/mid) >= (mid-1) ln(a/mid), i.e. top**n * mid**(mid-1) >= a**(mid-1) * mid**n.

    def reached(n):
        return top**n * mid ** (mid - 1) >= a ** (mid - 1) * mid**n

    with mpmath.workdps(40):
        x = (mid - 1) * mpmath.log(mpmath.mpf(a) / mid) / mpmath.log(mpmath.mpf(top) / mid)
        n = int(mpmath.ceil(x))
    n = max(n, 0)
    while n > 0 and reached(n - 1):
        n -= 1
    while not reached(n):
        n += 1
    return (1 if r > 0 else -1) * (mid + n)


def ref_deberta_log_bucket(inputs, params, output_name, index):
    r = _int_position(np.asarray(inputs["relative_position"])[tuple(int(i) for i in index)], 0)
    return _deberta_bucket(r, int(params["bucket_size"]), int(params["max_position"]))


def ref_deberta_relative_scores(inputs, params, output_name, index):
    index = tuple(int(i) for i in index)
    q = np.asarray(inputs["q"])
    k = np.asarray(inputs["k"])
    pos_key = _arg(inputs, params, "pos_key")
    pos_query = _arg(inputs, params, "pos_query")
    qp = _arg(inputs, params, "query_positions")
    kp = _arg(inputs, params, "key_positions")
    bucket_size = params.get("bucket_size")
    max_position = int(params["max_position"])
    c2p = bool(params.get("c2p", True))
    p2c = bool(params.get("p2c", True))
    lead, i, j = index[:-2], index[-2], index[-1]
    h = lead[-1]
    d = q.shape[-1]
    rel = _int_position(kp, j) - _int_position(qp, i)  # key minus query
    if bucket_size is not None:
        rel = _deberta_bucket(rel, int(bucket_size), max_position)
        span = int(bucket_size)
    else:
        span = max_position
    delta = -rel  # DeBERTa's query-minus-key
    c = min(max(delta + span, 0), 2 * span - 1)
    q_row = _vec(q[lead + (i,)])
    k_row = _vec(k[lead + (j,)])
    a_terms, b_terms = list(q_row), list(k_row)
    if c2p:
        a_terms += q_row
        b_terms += _vec(np.asarray(pos_key)[h, c])
    if p2c:
        a_terms += k_row
        b_terms += _vec(np.asarray(pos_query)[h, c])
    f = 1 + int(c2p) + int(p2c)
    return mpmath.fdot(a_terms, b_terms) / mpmath.sqrt(mpmath.mpf(d * f))


# --------------------------------------------------------------------------
# FIRE
# --------------------------------------------------------------------------


def _fire_z(pq: mpmath.mpf, pk: mpmath.mpf, c: mpmath.mpf, threshold: mpmath.mpf, eps: mpmath.mpf):
    """psi(i - j) / (psi(max(i, L)) + eps), psi(x) = ln(1 + |c x|) (Li et al.)."""
    num = mpmath.log1p(abs(c * (pq - pk)))
    den = mpmath.log1p(abs(c * max(pq, threshold))) + eps
    return num / den


def _fire_options(params):
    return _mpf(params.get("c", 0.1)), _mpf(params.get("threshold", 512.0)), _mpf(params.get("eps", 1e-6))


def ref_fire_normalized_distance(inputs, params, output_name, index):
    t, s = (int(i) for i in index)
    c, threshold, eps = _fire_options(params)
    pq = _position_value(_arg(inputs, params, "query_positions"), t)
    pk = _position_value(_arg(inputs, params, "key_positions"), s)
    return _fire_z(pq, pk, c, threshold, eps)


def ref_fire_bias(inputs, params, output_name, index):
    h, t, s = (int(i) for i in index)
    c, threshold, eps = _fire_options(params)
    qp = _arg(inputs, params, "query_positions")
    kp = _arg(inputs, params, "key_positions")
    w1, b1 = np.asarray(inputs["w1"]), np.asarray(inputs["b1"])
    w2, b2 = np.asarray(inputs["w2"]), np.asarray(inputs["b2"])
    key = ("fire_hidden", _fp(qp), _fp(kp), _fp(w1), _fp(b1), tuple(params.get(n) for n in ("c", "threshold", "eps")),
           t, s)

    def hidden():
        z = _fire_z(_position_value(qp, t), _position_value(kp, s), c, threshold, eps)
        return [max(mpmath.mpf(0), z * _mpf(w1[0, m]) + _mpf(b1[m])) for m in range(w1.shape[1])]

    act = _memo(key, hidden)
    terms = [a * _mpf(w2[m, h]) for m, a in enumerate(act)] + [_mpf(b2[h])]
    return mpmath.fsum(terms)


# --------------------------------------------------------------------------
# KERPLE, Sandwich
# --------------------------------------------------------------------------


def _distance(inputs, params, t, s):
    """Query-minus-key distance; future keys 0 unless bidirectional."""
    pq = _position_value(_arg(inputs, params, "query_positions"), t)
    pk = _position_value(_arg(inputs, params, "key_positions"), s)
    if params.get("bidirectional", False):
        return abs(pq - pk)
    return max(pq - pk, mpmath.mpf(0))


def ref_kerple_log_bias(inputs, params, output_name, index):
    h, t, s = (int(i) for i in index)
    r1 = _mpf(np.asarray(_arg(inputs, params, "r1")).reshape(-1)[h])
    r2 = _mpf(np.asarray(_arg(inputs, params, "r2")).reshape(-1)[h])
    delta = _distance(inputs, params, t, s)
    return -r1 * mpmath.log1p(r2 * delta)


def ref_kerple_power_bias(inputs, params, output_name, index):
    h, t, s = (int(i) for i in index)
    a = _mpf(np.asarray(_arg(inputs, params, "a")).reshape(-1)[h])
    p = _mpf(np.asarray(_arg(inputs, params, "p")).reshape(-1)[h])
    delta = _distance(inputs, params, t, s)
    if delta == 0:
        return mpmath.mpf(0)
    return -a * mpmath.power(delta, p)


def ref_sandwich_bias(inputs, params, output_name, index):
    h, t, s = (int(i) for i in index)
    dim = int(params["dim"])
    num_heads = int(params["num_heads"])
    base = _mpf(params.get("base", 10_000.0))
    k0 = int(params.get("first_frequency", 1))
    delta = _distance(inputs, params, t, s)
    key = ("sandwich_kernel", dim, params.get("base", 10_000.0), k0, delta)

    def kernel():
        return mpmath.fsum(mpmath.cos(delta * mpmath.power(base, mpmath.mpf(-2 * kk) / dim))
                           for kk in range(k0, k0 + dim // 2)) - mpmath.mpf(dim) / 2

    return _memo(key, kernel) / (mpmath.mpf(8 * (h + 1)) / num_heads)


# --------------------------------------------------------------------------
# NoPE
# --------------------------------------------------------------------------


def ref_nope(inputs, params, output_name, index):
    return _mpf(np.asarray(inputs["x"])[tuple(int(i) for i in index)])


def ref_nope_attention_temperature(inputs, params, output_name, index):
    p = int(np.asarray(inputs["positions"])[tuple(int(i) for i in index)])
    steps = (p + 1) // int(params.get("floor_scale", 8192))  # exact Python integers
    return 1 + _mpf(params.get("attn_scale", 0.1)) * mpmath.log(1 + steps)


# --------------------------------------------------------------------------
# Shaw
# --------------------------------------------------------------------------


def _shaw_index(qpos: int, kpos: int, k: int) -> int:
    return min(max(kpos - qpos, -k), k) + k


def ref_shaw_relative_index(inputs, params, output_name, index):
    t, s = (int(i) for i in index)
    return _shaw_index(_int_position(_arg(inputs, params, "query_positions"), t),
                       _int_position(_arg(inputs, params, "key_positions"), s),
                       int(params["max_relative_position"]))


def ref_shaw_relative_embeddings(inputs, params, output_name, index):
    t, s, c = (int(i) for i in index)
    row = _shaw_index(_int_position(_arg(inputs, params, "query_positions"), t),
                      _int_position(_arg(inputs, params, "key_positions"), s),
                      int(params["max_relative_position"]))
    return _mpf(np.asarray(inputs["table"])[row, c])


def ref_shaw_relative_logits(inputs, params, output_name, index):
    index = tuple(int(i) for i in index)
    q = np.asarray(inputs["q"])
    k = np.asarray(inputs["k"])
    rel = np.asarray(inputs["relative_keys"])
    lead, i, j = index[:-2], index[-2], index[-1]
    q_row = _vec(q[_bidx(lead, q.shape[:-2]) + (i,)])
    k_row = _vec(k[_bidx(lead, k.shape[:-2]) + (j,)])
    return mpmath.fdot(q_row + q_row, k_row + _vec(rel[i, j]))


def ref_shaw_relative_values(inputs, params, output_name, index):
    index = tuple(int(i) for i in index)
    w = np.asarray(inputs["weights"])
    v = np.asarray(inputs["v"])
    rel = np.asarray(inputs["relative_values"])
    lead, i, c = index[:-2], index[-2], index[-1]
    w_row = _vec(w[_bidx(lead, w.shape[:-2]) + (i,)])
    v_col = _vec(v[_bidx(lead, v.shape[:-2]) + (slice(None), c)])
    a_col = _vec(rel[i, :, c])
    return mpmath.fdot(w_row + w_row, v_col + a_col)


# --------------------------------------------------------------------------
# T5
# --------------------------------------------------------------------------


def _t5_bucket(r: int, bidirectional: bool, num_buckets: int, max_distance: int) -> int:
    """Raffel et al.'s bucket of the relative position r = key - query, the floor taken exactly."""
    if bidirectional:
        per_side = num_buckets // 2
        offset = per_side if r > 0 else 0
        n = abs(r)
    else:
        per_side = num_buckets
        offset = 0
        n = max(-r, 0)
    e = per_side // 2
    if n < e:
        return offset + n
    num_log = per_side - e
    if n >= max_distance:
        return offset + e + num_log - 1
    # floor(L ln(n/e) / ln(M/e)) >= k  <=>  (n/e)**L >= (M/e)**k  <=>  n**L * e**k >= M**k * e**L
    best = 0
    for kk in range(num_log - 1, 0, -1):
        if n**num_log * e**kk >= max_distance**kk * e**num_log:
            best = kk
            break
    return offset + e + best


def _t5_options(params):
    return (bool(params.get("bidirectional", True)), int(params.get("num_buckets", 32)),
            int(params.get("max_distance", 128)))


def ref_t5_relative_bucket(inputs, params, output_name, index):
    r = _int_position(np.asarray(inputs["relative_position"])[tuple(int(i) for i in index)], 0)
    return _t5_bucket(r, *_t5_options(params))


def ref_t5_relative_bias(inputs, params, output_name, index):
    h, t, s = (int(i) for i in index)
    r = _int_position(_arg(inputs, params, "key_positions"), s) - _int_position(_arg(inputs, params, "query_positions"), t)
    return _mpf(np.asarray(inputs["table"])[_t5_bucket(r, *_t5_options(params)), h])


# --------------------------------------------------------------------------
# Transformer-XL
# --------------------------------------------------------------------------


def ref_transformer_xl_relative_encoding(inputs, params, output_name, index):
    index = tuple(int(i) for i in index)
    dim = int(params["dim"])
    base = _mpf(params.get("base", 10_000.0))
    max_distance = params.get("max_distance")
    delta = _mpf(np.asarray(inputs["distances"])[index[:-1]])
    if max_distance is not None:
        delta = min(delta, mpmath.mpf(int(max_distance)))
    half = dim // 2
    c = index[-1]
    kk = c % half
    angle = delta * mpmath.power(base, mpmath.mpf(-2 * kk) / dim)
    return mpmath.sin(angle) if c < half else mpmath.cos(angle)


def ref_transformer_xl_scores(inputs, params, output_name, index):
    index = tuple(int(i) for i in index)
    q, k, r = np.asarray(inputs["q"]), np.asarray(inputs["k"]), np.asarray(inputs["r"])
    u, v = np.asarray(inputs["u"]), np.asarray(inputs["v"])
    scale = params.get("scale")
    future_keys = params.get("future_keys", "mask")
    lead, i, j = index[:-2], index[-2], index[-1]
    h = lead[-1]
    t_count, s_count, d = q.shape[-2], k.shape[-2], q.shape[-1]
    memory = s_count - t_count
    delta = memory + i - j  # distance of key j from query i (absolute position i + M)
    s_scale = _inv_sqrt(d) if scale is None else _mpf(scale)
    if delta < 0 and future_keys == "mask":
        return NEG_INF
    q_row, u_row, k_row = _vec(q[lead + (i,)]), _vec(u[h]), _vec(k[lead + (j,)])
    a_terms, b_terms = q_row + u_row, k_row + k_row  # (q + u) . k: terms (a) and (c)
    if delta >= 0:
        r_row = _vec(r[h, delta])
        a_terms += q_row + _vec(v[h])
        b_terms += r_row + r_row  # (q + v) . r_delta: terms (b) and (d)
    return s_scale * mpmath.fdot(a_terms, b_terms)


# --------------------------------------------------------------------------

REFERENCES: dict[str, Callable[[dict[str, np.ndarray], dict[str, Any], str, tuple[int, ...]], Any]] = {
    "alibi_slopes": ref_alibi_slopes,
    "alibi_bias": ref_alibi_bias,
    "attention": ref_attention,
    "cope_positions": ref_cope_positions,
    "cope_bias": ref_cope_bias,
    "peg": ref_peg,
    "deberta_log_bucket": ref_deberta_log_bucket,
    "deberta_relative_scores": ref_deberta_relative_scores,
    "fire_normalized_distance": ref_fire_normalized_distance,
    "fire_bias": ref_fire_bias,
    "kerple_log_bias": ref_kerple_log_bias,
    "kerple_power_bias": ref_kerple_power_bias,
    "sandwich_bias": ref_sandwich_bias,
    "nope": ref_nope,
    "nope_attention_temperature": ref_nope_attention_temperature,
    "shaw_relative_index": ref_shaw_relative_index,
    "shaw_relative_embeddings": ref_shaw_relative_embeddings,
    "shaw_relative_logits": ref_shaw_relative_logits,
    "shaw_relative_values": ref_shaw_relative_values,
    "t5_relative_bucket": ref_t5_relative_bucket,
    "t5_relative_bias": ref_t5_relative_bias,
    "transformer_xl_relative_encoding": ref_transformer_xl_relative_encoding,
    "transformer_xl_scores": ref_transformer_xl_scores,
}
