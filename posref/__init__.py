"""posref: the executable specification of transformer position encodings.

Every public function is a float64 NumPy formula with its paper, its
conventions as named parameters, and a doctest.  ``posref.spec_functions()``
lists them; ``posref list`` does the same from the shell.
``posref.helper_functions()`` lists the helpers: public functions of the
family modules (``posref.rope.rotated_channels``, ...) that derive a
quantity of a formula, without golden cases of their own.
"""

from posref._spec import HELPERS, SPEC_FUNCTIONS, HelperFunction, SpecFunction, helper_functions, spec_functions
from posref._version import SPEC_VERSION, __version__
from posref.alibi import *  # noqa: F403
from posref.attention import *  # noqa: F403
from posref.cpe import *  # noqa: F403
from posref.fope import *  # noqa: F403
from posref.fourier import *  # noqa: F403
from posref.learned import *  # noqa: F403
from posref.multiaxis import *  # noqa: F403
from posref.relative import *  # noqa: F403
from posref.rope import *  # noqa: F403
from posref.rope_scaling import *  # noqa: F403
from posref.shaw import *  # noqa: F403
from posref.sinusoidal import *  # noqa: F403
from posref.t5 import *  # noqa: F403
from posref.xpos import *  # noqa: F403

__all__ = [
    "__version__",
    "SPEC_VERSION",
    "SPEC_FUNCTIONS",
    "SpecFunction",
    "spec_functions",
    "HELPERS",
    "HelperFunction",
    "helper_functions",
] + [name for name in SPEC_FUNCTIONS]
