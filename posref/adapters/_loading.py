"""Loading one file of an installed package without importing the package.

Some libraries' package ``__init__`` pulls in heavy or unavailable
dependencies (TensorFlow, Triton) that the one module an adapter needs does
not use; that module is loaded from its path instead.
"""

from __future__ import annotations

__all__ = ["load_package_file"]


def load_package_file(package: str, relative_path: tuple[str, ...], module_name: str):
    """The module in file ``relative_path`` of the installed ``package``, run under the name ``module_name``.

    Raises
    ------
    ImportError
        If the package is not installed, or has no such file.
    """
    import importlib.util
    import pathlib

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the {package} package is not installed")
    path = pathlib.Path(list(spec.submodule_search_locations)[0]).joinpath(*relative_path)
    if not path.is_file():
        raise ImportError(f"{package} has no {'/'.join(relative_path)} (looked at {path})")
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module
