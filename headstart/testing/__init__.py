"""Tiny backbones and conformance checks for tests."""
