"""eib: a declarative OS image builder for OSTree + Flatpak disk images."""

__version__ = "0.1.0"
