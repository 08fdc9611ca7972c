r"""Relative position schemes beyond Shaw, T5 and ALiBi, one module per family.

Transformer-XL (:mod:`~posref.relative.transformer_xl`), DeBERTa
(:mod:`~posref.relative.deberta`), KERPLE (:mod:`~posref.relative.kerple`),
Sandwich (:mod:`~posref.relative.sandwich`), FIRE
(:mod:`~posref.relative.fire`), CoPE (:mod:`~posref.relative.cope`) and
NoPE (:mod:`~posref.relative.nope`).  Each one either adds a bias to the
attention logits or builds the logits itself; every function returns
float64 arrays (DeBERTa buckets: int64).  This package re-exports all of
them, so ``from posref.relative import kerple_log_bias`` works as well as
``from posref import kerple_log_bias``.

Sign convention: wherever posref speaks of a ``relative_position`` it
means *key position minus query position*.  Schemes that are naturally
written with the query-minus-key *distance* (Transformer-XL, KERPLE,
Sandwich, FIRE) say so where they use it.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T``
query positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

# Each family module's spec functions (its ``__all__``) are re-exported and listed in
# ``__all__`` here, so a function added to a family module needs no edit of this file.
from posref.relative import cope as _cope
from posref.relative import deberta as _deberta
from posref.relative import fire as _fire
from posref.relative import kerple as _kerple
from posref.relative import nope as _nope
from posref.relative import sandwich as _sandwich
from posref.relative import transformer_xl as _transformer_xl
from posref.relative._common import relative_distance
from posref.relative.cope import *  # noqa: F403
from posref.relative.cope import COPE_REFERENCE, cope_causal_mask
from posref.relative.deberta import *  # noqa: F403
from posref.relative.deberta import DEBERTA_REFERENCE
from posref.relative.fire import *  # noqa: F403
from posref.relative.fire import FIRE_REFERENCE
from posref.relative.kerple import *  # noqa: F403
from posref.relative.kerple import KERPLE_REFERENCE
from posref.relative.nope import *  # noqa: F403
from posref.relative.nope import NOPE_REFERENCE
from posref.relative.sandwich import *  # noqa: F403
from posref.relative.sandwich import SANDWICH_REFERENCE
from posref.relative.transformer_xl import *  # noqa: F403
from posref.relative.transformer_xl import FUTURE_KEYS, TRANSFORMER_XL_REFERENCE

#: The spec functions of the seven families (helpers such as :func:`relative_distance` are
#: importable from here too, but are not spec functions and are not listed).
__all__: list[str] = []
__all__ += _cope.__all__
__all__ += _deberta.__all__
__all__ += _fire.__all__
__all__ += _kerple.__all__
__all__ += _nope.__all__
__all__ += _sandwich.__all__
__all__ += _transformer_xl.__all__
