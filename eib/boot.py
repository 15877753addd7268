"""Boot a disk image in QEMU and watch its serial console for a marker.

Always TCG: KVM is present on the build hosts but hangs guests. The image is
attached with `snapshot=on`, so booting never changes the image file. The
console goes to a log file that is kept, and success means the expected text
appeared on it before the timeout.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eib.errors import BuildError, UserError
from eib.inspect import raw_image
from eib.paths import boot_log_dir
from eib.tools.run import require

log = logging.getLogger("eib.boot")

Firmware = Literal["uefi", "bios"]
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
DEFAULT_MARKER = "EIB-DEMO-READY"


def default_marker() -> str:
    try:
        from eib.demo import READY_MARKER
    except ImportError:
        return DEFAULT_MARKER
    return str(READY_MARKER)


@dataclass(frozen=True)
class BootResult:
    ok: bool
    seconds: float
    log: Path
    reason: str  # "marker", "timeout" or "exited N"

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def qemu_command(
    image: Path, firmware: Firmware, console: Path, vars_file: Path | None, memory: int
) -> list[str]:
    argv = [
        require("qemu-system-x86_64"),
        "-accel",
        "tcg",
        "-m",
        str(memory),
        "-smp",
        "1",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{console}",
        "-no-reboot",
        "-drive",
        f"file={image},format=raw,if=virtio,snapshot=on",
        "-nic",
        "none",
    ]
    if firmware == "uefi":
        assert vars_file is not None
        argv += [
            "-machine",
            "q35",
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={vars_file}",
        ]
    else:
        argv += ["-machine", "pc"]
    return argv


def boot_image(
    image: Path,
    *,
    firmware: Firmware = "uefi",
    timeout: float = 300,
    expect: str | None = None,
    log_file: Path | None = None,
    memory: int = 1024,
) -> BootResult:
    """Boot `image` (raw, or .gz/.xz/.zst) and wait for `expect` on the console.

    A signal (`Interrupted`) ends QEMU and removes the temporary raw copy and
    firmware variables on its way out, like any other way this returns.
    """
    from eib.interrupt import Interrupted

    try:
        return _boot(image, firmware, timeout, expect, log_file, memory)
    except Interrupted as err:
        raise err.located("boot") from None


def _boot(
    image: Path,
    firmware: Firmware,
    timeout: float,
    expect: str | None,
    log_file: Path | None,
    memory: int,
) -> BootResult:
    if firmware not in ("uefi", "bios"):
        raise UserError(f"--firmware must be uefi or bios, not '{firmware}'")
    if firmware == "uefi" and not OVMF_CODE.is_file():
        raise BuildError(f"UEFI firmware {OVMF_CODE} is missing (install the ovmf package)")
    marker = expect or default_marker()
    # Not beside the image: an output dir is what gets published.
    if log_file is None:
        from eib.execute.safedirs import ensure_private_dir

        ensure_private_dir(boot_log_dir(), key="--log")
    console = log_file or boot_log_dir() / f"{image.name}.{firmware}.console.log"
    console.parent.mkdir(parents=True, exist_ok=True)
    console.write_bytes(b"")
    with raw_image(image) as raw, tempfile.TemporaryDirectory(prefix="eib-boot-") as tmp:
        vars_file = None
        if firmware == "uefi":
            vars_file = Path(tmp) / "OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS, vars_file)
        argv = qemu_command(raw, firmware, console, vars_file, memory)
        log.info("$ %s", shlex.join(argv))
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        reason = "interrupted"
        ended = started
        try:
            reason = _watch(proc, console, marker, started + timeout)
            ended = time.monotonic()
        finally:
            if proc.poll() is None:
                # The demo powers off after its marker: give it a moment, then stop it.
                try:
                    proc.wait(timeout=5 if reason == "marker" else 0.1)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        if output.strip():
            log.info("qemu: %s", output.strip())
    return BootResult(reason == "marker", ended - started, console, reason)


def _watch(proc: subprocess.Popen[bytes], console: Path, marker: str, deadline: float) -> str:
    needle = marker.encode()
    seen = 0
    with console.open("rb") as reader:
        buffer = b""
        while True:
            chunk = reader.read()
            if chunk:
                buffer = buffer[-len(needle) :] + chunk
                seen += len(chunk)
                if needle in buffer:
                    return "marker"
            code = proc.poll()
            if code is not None:
                rest = reader.read()
                if needle in buffer[-len(needle) :] + rest:
                    return "marker"
                return f"qemu exited with {code}"
            if time.monotonic() > deadline:
                return "timeout"
            time.sleep(0.2)
