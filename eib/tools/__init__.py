"""Thin typed wrappers over the system tools eib drives (one module per tool)."""
