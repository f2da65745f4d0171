"""Integrations with optional packages; each module imports its package, so import it only when
that package is installed."""
