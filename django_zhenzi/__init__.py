"""Zhenzi Cloud SMS (榛子云短信) for Django."""

__version__ = "0.1.0"
