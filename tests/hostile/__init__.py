"""Hostile inputs: corpora, file systems, adapters and command lines that once lost data, hung or lied."""
