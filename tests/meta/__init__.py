"""Implementations used to test the error model: correct ones that must pass, broken ones that must fail."""
