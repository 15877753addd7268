"""Publishing to a server over ssh with rsync.

`--delay-updates` keeps every file in a holding directory (the
`--partial-dir`) until the whole transfer is done and then renames them all
at once, so a web server never serves half a build; the `.inprogress` marker
covers the short rename window and the time until the marker is removed.
A failed transfer is cleaned up with `rm -rf` of the build directory over
ssh.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from eib.errors import BuildError, UserError
from eib.model.recipe import RsyncTarget as RsyncSettings
from eib.publish.targets import (
    MARKER,
    ProgressMeter,
    PublishFile,
    Target,
    TransferSettings,
    join_path,
    publish_error,
    secret_file,
)
from eib.tools.run import require, run

log = logging.getLogger("eib.publish")
tools_log = logging.getLogger("eib.tools")

HOLDING_DIR = ".eib-partial"
# rsync exit codes of a broken connection or a timeout: worth resuming.
NETWORK_CODES = {10, 12, 30, 35, 255}


def check_remote_name(value: str, *, key: str) -> None:
    """A host or user starting with '-' would be read by ssh as an option (-oProxyCommand=…).

    Checked here too, not only when a recipe is validated: a saved plan skips validation.
    """
    if value.startswith("-"):
        raise UserError(f"{value!r} starts with '-': ssh would read it as an option", key=key)


class RsyncFailed(BuildError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message, stage="publish", step="rsync")
        self.code = code


class RsyncTarget(Target):
    kind = "rsync"

    def __init__(
        self,
        target: RsyncSettings,
        prefix: str,
        secrets: Mapping[str, str],
        workdir: Path,
        settings: TransferSettings,
        state_dir: Path,
        *,
        key: str,
    ) -> None:
        check_remote_name(target.host, key=f"{key}.host")
        check_remote_name(target.user, key=f"{key}.user")
        self.host = target.host
        self.login = f"{target.user}@{target.host}" if target.user else target.host
        self.dest = join_path(target.path, prefix) if target.path else prefix
        self.existing: set[str] = set()  # files below dest before this publish began
        self.settings = settings
        self.workdir = workdir
        identity = (
            secret_file(secrets, target.identity_secret, workdir, key=f"{key}.identity_secret")
            if target.identity_secret
            else None
        )
        self.ssh = self._ssh_command(identity, target.port, state_dir)

    def _ssh_command(self, identity: Path | None, port: int | None, state_dir: Path) -> list[str]:
        """ssh that never prompts and remembers host keys in eib's own cache.

        `accept-new` trusts a host the first time and refuses a changed key
        afterwards, like a person answering "yes" once.
        """
        known_hosts = state_dir / "ssh" / "known_hosts"
        try:
            known_hosts.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise publish_error(f"cannot create {known_hosts.parent}: {err}", step="rsync") from err
        cmd = [require("ssh")]
        if identity is not None:
            cmd += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
        if port:
            cmd += ["-p", str(port)]
        cmd += [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", f"ConnectTimeout={int(self.settings.timeout_seconds)}",
            "-o", "ServerAliveInterval=15",
        ]  # fmt: skip
        return cmd

    @property
    def location(self) -> str:
        return f"{self.login}:{self.dest}"

    def remote(self, script: str, step: str) -> str:
        """Run a shell command on the server; its standard output."""
        try:
            proc = run([*self.ssh, "--", self.login, script],
                       timeout=self.settings.timeout_seconds * 5)
        except BuildError as err:
            raise publish_error(f"{step} on {self.location}: {err.message}", step="rsync") from err
        return proc.stdout or ""

    def _files(self, step: str) -> set[str]:
        """The files below the build's directory (paths relative to it), if it exists."""
        d = shlex.quote(self.dest)
        listing = self.remote(f"if [ -d {d} ]; then cd {d} && find . -type f -print0; fi", step)
        return {name.removeprefix("./") for name in listing.split("\0") if name}

    def begin(self) -> None:
        """Note the files an earlier publish left (an aborted publish keeps them), then mark."""
        self.existing = self._files(f"creating {MARKER}")
        d = shlex.quote(self.dest)
        self.remote(f"mkdir -p {d} && : > {d}/{MARKER}", f"creating {MARKER}")

    def _staging(self, files: Sequence[PublishFile]) -> Path:
        """A tree of symlinks naming each file as published (sent with --copy-links)."""
        stage = Path(tempfile.mkdtemp(prefix="rsync-", dir=self.workdir))
        for f in files:
            link = stage / f.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f.path.resolve())
        return stage

    def _rsync(self, files: Sequence[PublishFile], meter: ProgressMeter | None) -> None:
        stage = self._staging(files)
        sizes = {f.name: f.size for f in files}
        cmd = [
            require("rsync"),
            "--recursive", "--copy-links", "--times", "--mkpath",
            "--chmod=D755,F644",
            "--delay-updates", f"--partial-dir={HOLDING_DIR}",
            f"--exclude={MARKER}",
            "--out-format=%n", "--outbuf=L",
            f"--timeout={int(self.settings.timeout_seconds)}",
            "-e", shlex.join(self.ssh),
            "--", f"{stage}/", f"{self.login}:{self.dest}/",
        ]  # fmt: skip
        tools_log.debug("$ %s", shlex.join(cmd))
        with tempfile.TemporaryFile(dir=self.workdir) as errors:
            # Popen, not run(): each transferred name is reported as it comes.
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True) as proc:
                assert proc.stdout is not None
                for line in proc.stdout:
                    name = line.rstrip("\n")
                    if meter is not None and name in sizes:
                        meter.add(name, sizes[name])
                rc = proc.wait()
            if rc != 0:
                errors.seek(0)
                tail = errors.read().decode(errors="replace").strip().splitlines()[-5:]
                raise RsyncFailed(
                    f"rsync to {self.location} exited with {rc}: " + " / ".join(tail), rc
                )

    def upload(self, files: Sequence[PublishFile], meter: ProgressMeter) -> None:
        for attempt in range(1, self.settings.object_attempts + 1):
            before = meter.sent
            try:
                self._rsync(files, meter)
                break
            except RsyncFailed as err:
                meter.rewind(meter.sent - before)
                if err.code not in NETWORK_CODES or attempt == self.settings.object_attempts:
                    raise
                delay = self.settings.backoff_seconds * 2 ** (attempt - 1)
                log.warning("%s; retrying in %.1f s", err.message, delay)
                time.sleep(delay)
        for f in files:
            log.info("published %s to %s", f.name, self.location)

    def finish(self) -> None:
        d = shlex.quote(self.dest)
        self.remote(f"rm -rf {d}/{HOLDING_DIR} && rm -f {d}/{MARKER}", f"removing {MARKER}")

    def abort(self) -> None:
        """Delete what this publish sent; files published before it began stay."""
        d = shlex.quote(self.dest)
        if not self.existing:
            self.remote(f"rm -rf {d}", "deleting the partial upload")
            log.info("deleted the partial upload at %s", self.location)
            return
        step = "deleting the partial upload"
        added = sorted(self._files(step) - self.existing)
        # The marker goes last, so an interrupted cleanup still shows the build as partial.
        added.sort(key=lambda name: name == MARKER)
        names = " ".join(shlex.quote(name) for name in added)
        self.remote(f"cd {d} && rm -rf {HOLDING_DIR}" + (f" && rm -f -- {names}" if names else ""),
                    step)
        log.info("deleted the partial upload at %s (%d files); kept the %d published before",
                 self.location, len(added), len(self.existing))

    def put_log(self, log_file: PublishFile) -> None:
        self._rsync([log_file], None)

    def close(self) -> None:
        return None
