"""Version numbers of the package and of the specification it encodes."""

__version__ = "0.1.0"

#: Version of the mathematical specification.  It changes only when a spec
#: function's output changes for some input (a new function or a new
#: parameter whose default keeps old outputs does not change it).
SPEC_VERSION = "1.0"
