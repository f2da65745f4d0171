"""System checks for ``settings.ZHENZI``."""
