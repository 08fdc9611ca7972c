"""Version numbers of the package and of the specification it encodes."""

#: Version of the posref package (its code, command line and file formats).
#: The outputs it specifies are versioned separately, by :data:`SPEC_VERSION`.
__version__ = "0.1.0"

#: Version of the mathematical specification.  It changes only when a spec
#: function's output changes for some input (a new function or a new
#: parameter whose default keeps old outputs does not change it).
SPEC_VERSION = "1.0"
