"""Built-in adapters.

Each module wraps one library and imports it only when the adapter is
loaded; ``posref adapters`` lists them and says which can run here.
"""
