"""Suite-wide setup: the `eib` the tests run is the one of this interpreter."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Tests run `eib` as a subprocess; make it the console script installed next
# to the interpreter running pytest (the project's .venv), whatever PATH says.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
