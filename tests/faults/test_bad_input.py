"""Bad input of every kind: one line naming the file, line and key (or the option),
exit status 2, no traceback, and a `run` leaves its output dir as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from eib.limits import MAX_PLAN_BYTES, MAX_RECIPE_BYTES, MAX_VALUE_CHARS, MAX_YAML_NODES

EIB = [sys.executable, "-m", "eib.cli"]
MINIMAL = "image: {}\n"
MARKER = "previous build\n"


def run_eib(
    *args: str | Path, prefix: Sequence[str] = (), cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *EIB, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1764322800"},
        cwd=cwd,
        timeout=120,  # a FIFO read by mistake would block forever
        check=False,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The single stderr line of a refused command, checked to hold each `expected` text."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("eib: error: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@dataclass
class Dirs:
    """The dirs of a `run`: an output dir holding an earlier build, work and cache unborn."""

    output: Path
    work: Path
    cache: Path

    def args(self) -> list[str]:
        return [
            "--output-dir", str(self.output),
            "--work-dir", str(self.work),
            "--cache-dir", str(self.cache),
        ]

    def assert_untouched(self) -> None:
        assert [p.name for p in self.output.iterdir()] == ["MARKER"]
        assert (self.output / "MARKER").read_text() == MARKER
        assert not self.work.exists()
        assert not self.cache.exists()


@pytest.fixture
def dirs(tmp_path: Path) -> Dirs:
    found = Dirs(tmp_path / "out", tmp_path / "work", tmp_path / "cache")
    found.output.mkdir()
    (found.output / "MARKER").write_text(MARKER)
    return found


def refused_run(dirs: Dirs, *args: str | Path, expected: Sequence[str] = ()) -> str:
    """`eib run` of bad input: one line, exit 2, and nothing built or touched."""
    line = one_line_error(run_eib("run", *args, *dirs.args()), *expected)
    dirs.assert_untouched()
    return line


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# 1. Not UTF-8


def test_recipe_not_utf8(tmp_path: Path, dirs: Dirs) -> None:
    r = write(tmp_path / "bin.yaml", b'image:\n  name: "\xff\xfe"\n')
    one_line_error(run_eib("validate", r, "--arch", "amd64"), f"{r}:2:", "not UTF-8")
    refused_run(dirs, r, "--arch", "amd64", expected=(f"{r}:2:", "not UTF-8"))


def test_extends_not_utf8(tmp_path: Path) -> None:
    write(tmp_path / "bin.yaml", b"image:\n  hostname: \xff\n")
    r = write(tmp_path / "r.yaml", "eib: 1\nextends: [bin.yaml]\n")
    one_line_error(
        run_eib("plan", r, "--arch", "amd64"), f"{r}:2:", "extends:", "bin.yaml:2", "not UTF-8"
    )


# 2. Empty recipe


def test_empty_recipe(tmp_path: Path, dirs: Dirs) -> None:
    for text in ("", "# only a comment\n"):
        r = write(tmp_path / "empty.yaml", text)
        one_line_error(run_eib("validate", r, "--arch", "amd64"), str(r), "recipe is empty")
    refused_run(dirs, r, "--arch", "amd64", expected=(str(r), "recipe is empty"))


# 3. extends: a file that is not a recipe


def test_extends_a_file_that_is_not_a_recipe(tmp_path: Path) -> None:
    shadow = write(tmp_path / "shadow", "root:*:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n")
    r = write(tmp_path / "r.yaml", f"eib: 1\nimage: {{}}\nextends:\n  - {shadow}\n")
    line = one_line_error(
        run_eib("validate", r, "--arch", "amd64"),
        f"{r}:4:", "extends:", f"{shadow}:1", "not a recipe",
    )
    assert "20228" not in line  # the file's content is never echoed


@pytest.mark.parametrize("name", ["/etc/passwd", "/etc/shadow"])
def test_extends_system_files(tmp_path: Path, name: str) -> None:
    if not Path(name).exists():
        pytest.skip(f"no {name} here")
    r = write(tmp_path / "r.yaml", f"eib: 1\nimage: {{}}\nextends: [{name}]\n")
    one_line_error(run_eib("validate", r, "--arch", "amd64"), f"{r}:3:", "extends:", name)


# 4. Not a regular file


def test_fifo_recipe_and_extends(tmp_path: Path, dirs: Dirs) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    one_line_error(run_eib("validate", fifo, "--arch", "amd64"), str(fifo), "not a regular file")
    refused_run(dirs, fifo, "--arch", "amd64", expected=(str(fifo), "not a regular file (a FIFO)"))
    r = write(tmp_path / "r.yaml", "eib: 1\nextends: [fifo.yaml]\n")
    one_line_error(
        run_eib("plan", r, "--arch", "amd64"), f"{r}:2:", "extends:", "not a regular file (a FIFO)"
    )


def test_directory_and_device_as_extends(tmp_path: Path) -> None:
    (tmp_path / "sub.yaml").mkdir()
    for target, kind in (("sub.yaml", "a directory"), ("/dev/null", "a character device")):
        r = write(tmp_path / "r.yaml", f"eib: 1\nextends: [{target}]\n")
        one_line_error(
            run_eib("validate", r, "--arch", "amd64"), f"{r}:2:", "extends:", f"({kind})"
        )


# 5. Unreadable recipe


def test_directory_as_recipe(tmp_path: Path, dirs: Dirs) -> None:
    one_line_error(run_eib("validate", tmp_path, "--arch", "amd64"), str(tmp_path), "directory")
    refused_run(dirs, tmp_path, "--arch", "amd64", expected=(str(tmp_path), "directory"))


@pytest.fixture
def unreadable() -> Iterator[tuple[Path, list[str]]]:
    """A recipe its reader may not read, and the command prefix of that reader."""
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything: read as nobody instead
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)
        recipe = write(Path(tmp) / "secret.yaml", MINIMAL)
        recipe.chmod(0)
        yield recipe, prefix


def test_unreadable_recipe(unreadable: tuple[Path, list[str]]) -> None:
    recipe, prefix = unreadable
    for command in (["validate"], ["plan"], ["run", "--dry-run"]):
        proc = run_eib(*command, recipe, "--arch", "amd64", prefix=prefix)
        one_line_error(proc, str(recipe), "cannot read: Permission denied")


# 6. YAML alias bombs and huge files


def test_billion_laughs(tmp_path: Path, dirs: Dirs) -> None:
    lines = ["extra_sec:", "  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    r = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    expected = (str(r), "extra_sec.", f"more than {MAX_YAML_NODES} values")
    one_line_error(run_eib("validate", r, "--arch", "amd64"), *expected)
    refused_run(dirs, r, "--arch", "amd64", expected=expected)


def test_alias_that_refers_to_itself(tmp_path: Path) -> None:
    r = write(tmp_path / "loop.yaml", "extra_sec:\n  a: &a [*a]\n")
    one_line_error(run_eib("validate", r, "--arch", "amd64"), f"{r}:2:", "extra_sec.a", "nested")


def test_alias_bomb_in_set(tmp_path: Path) -> None:
    r = write(tmp_path / "r.yaml", MINIMAL)
    bomb = "[&a [1,1,1,1,1,1,1,1,1]" + "".join(
        f", &{n} [" + ", ".join([f"*{p}"] * 9) + "]" for p, n in zip("abcde", "bcdef", strict=True)
    ) + "]"
    one_line_error(
        run_eib("validate", r, "--arch", "amd64", "--set", f"image.settings={bomb}"),
        "--set", "image.settings", "values",
    )


def test_recipe_larger_than_the_limit(tmp_path: Path) -> None:
    r = write(tmp_path / "big.yaml", "image: {}\n#" + "x" * MAX_RECIPE_BYTES + "\n")
    one_line_error(run_eib("validate", r, "--arch", "amd64"), str(r), f"{MAX_RECIPE_BYTES} bytes")


# 7. Values too long to reach a hook


def test_long_value_in_the_recipe(tmp_path: Path) -> None:
    long = "y" * (MAX_VALUE_CHARS + 1)
    r = write(tmp_path / "r.yaml", f"image:\n  hostname: x\n  language: {long}\n")
    line = one_line_error(
        run_eib("validate", r, "--arch", "amd64"),
        f"{r}:3:", "image.language:", str(MAX_VALUE_CHARS),
    )
    assert "yyyy" not in line


def test_long_value_in_set(tmp_path: Path, dirs: Dirs) -> None:
    r = write(tmp_path / "r.yaml", MINIMAL)
    value = "n" * (MAX_VALUE_CHARS + 1)
    expected = ("--set image.hostname:", str(MAX_VALUE_CHARS))
    line = one_line_error(
        run_eib("validate", r, "--arch", "amd64", "--set", f"image.hostname={value}"), *expected
    )
    assert "nnnn" not in line
    refused_run(dirs, r, "--arch", "amd64", "--set", f"image.hostname={value}", expected=expected)


def test_interpolation_that_doubles(tmp_path: Path) -> None:
    lines = ["extra_sec:", "  a0: " + "z" * 1000]
    lines += [f'  a{i}: "${{a{i - 1}}}${{a{i - 1}}}"' for i in range(1, 30)]
    r = write(tmp_path / "r.yaml", "\n".join(lines) + "\n")
    one_line_error(run_eib("validate", r, "--arch", "amd64"), f"{r}:", "extra_sec.a", "limit")


# 8. Variant values, named where they came from


def test_bad_arch_option(tmp_path: Path) -> None:
    r = write(tmp_path / "r.yaml", MINIMAL)
    one_line_error(run_eib("validate", r, "--arch", "sparc"), "--arch:", "unsupported arch 'sparc'")
    one_line_error(
        run_eib("plan", r, "--matrix", "arch=amd64,sparc"), "--matrix arch:", "'sparc'"
    )


def test_bad_personality_option(tmp_path: Path, dirs: Dirs) -> None:
    r = write(tmp_path / "r.yaml", MINIMAL)
    expected = ("--personality:", "invalid personality '../../etc'")
    proc = run_eib("validate", r, "--arch", "amd64", "--personality", "../../etc")
    one_line_error(proc, *expected)
    refused_run(dirs, r, "--arch", "amd64", "--personality", "../../etc", expected=expected)


def test_bad_variant_in_the_recipe(tmp_path: Path) -> None:
    r = write(tmp_path / "r.yaml", "variant:\n  arch: sparc\n  personality: ../../etc\n")
    one_line_error(run_eib("validate", r), f"{r}:2:", "variant.arch:", "'sparc'")
    r = write(tmp_path / "r.yaml", "variant:\n  personality: ../../etc\n")
    one_line_error(run_eib("validate", r, "--arch", "amd64"), f"{r}:2:", "variant.personality:")


def test_variant_through_set(tmp_path: Path) -> None:
    r = write(tmp_path / "r.yaml", MINIMAL)
    one_line_error(
        run_eib("validate", r, "--arch", "amd64", "--set", "variant.arch=sparc"),
        "--set variant.arch=sparc", "--product/--branch",
    )


# 9. Sections missing what they need


def test_flatpak_remote_without_url(tmp_path: Path) -> None:
    r = write(tmp_path / "r.yaml", (
        "flatpak:\n  remotes:\n    fh:\n      gpg_verify: false\n"
        "      apps: {add: [org.example.App]}\n"
    ))
    one_line_error(run_eib("validate", r, "--arch", "amd64"), f"{r}:3:", "flatpak.remotes.fh.url:")


def test_s3_target_without_bucket(tmp_path: Path) -> None:
    r = write(tmp_path / "r.yaml", "publish:\n  targets:\n    - kind: s3\n      path: x\n")
    one_line_error(
        run_eib("validate", r, "--arch", "amd64"),
        f"{r}:2:", "publish.targets[0].bucket:", "missing",
    )
    r = write(tmp_path / "r.yaml", "publish:\n  targets:\n    - bucket: b\n")
    one_line_error(run_eib("validate", r, "--arch", "amd64"), f"{r}:2:", "no 'kind'", "'s3'")


# 10. --output-dir that is a file


def test_output_dir_is_a_file(tmp_path: Path) -> None:
    r = write(tmp_path / "r.yaml", MINIMAL)
    out = write(tmp_path / "out", MARKER)
    proc = run_eib("run", r, "--arch", "amd64", "--output-dir", out,
                   "--work-dir", tmp_path / "work", "--cache-dir", tmp_path / "cache")
    one_line_error(proc, "--output-dir:", str(out), "not a directory")
    assert out.read_text() == MARKER
    assert not (tmp_path / "work").exists() and not (tmp_path / "cache").exists()


# 11. eib inspect of something that is not a disk image


def test_inspect_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    one_line_error(run_eib("inspect", "/etc/passwd"), "/etc/passwd: not a disk image")
    fake = write(tmp_path / "x.img.gz", "plain text\n")
    one_line_error(run_eib("inspect", fake), str(fake), "not a disk image")
    one_line_error(run_eib("inspect", tmp_path), str(tmp_path), "not a disk image")


# 12. A saved plan that is not a regular file, or far too big


def test_plan_file_that_is_not_a_plan_file(tmp_path: Path, dirs: Dirs) -> None:
    """`--plan FILE` and `plan --diff FILE` never block on a FIFO nor read a device."""
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    directory = tmp_path / "dir.json"
    directory.mkdir()
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(MAX_PLAN_BYTES + 1)
    r = write(tmp_path / "r.yaml", MINIMAL)
    for path, text in (
        (fifo, "not a regular file (a FIFO)"),
        (directory, "not a regular file (a directory)"),
        (Path("/dev/zero"), "not a regular file (a character device)"),
        (big, f"larger than the {MAX_PLAN_BYTES} bytes allowed"),
    ):
        refused_run(dirs, "--plan", path, expected=(str(path), text))
        one_line_error(run_eib("plan", r, "--arch", "amd64", "--diff", path), str(path), text)


# 13. Values that fit one by one but not together


def test_hook_environment_too_big_in_total(tmp_path: Path, dirs: Dirs) -> None:
    """40 values under the per-value limit add up past ARG_MAX: refused when the plan is
    made, naming the biggest variables, rather than failing at the first hook."""
    lines = ["image: {}", "extra_sec:"]
    lines += [f"  part{i}: " + "v" * 60_000 for i in range(37)]
    lines += [f"  huge{i}: " + "w" * (MAX_VALUE_CHARS - i) for i in range(3)]
    r = write(tmp_path / "r.yaml", "\n".join(lines) + "\n")
    expected = ("hooks environment:", "ARG_MAX",
                "largest: EIB_EXTRA_SEC_HUGE0 (", "EIB_EXTRA_SEC_HUGE1 (", "EIB_EXTRA_SEC_HUGE2 (")
    line = one_line_error(run_eib("validate", r, "--arch", "amd64"), *expected)
    assert "www" not in line and "PART" not in line
    refused_run(dirs, r, "--arch", "amd64", expected=expected)
    # Half of it is fine.
    half = write(tmp_path / "half.yaml", "\n".join(lines[:22]) + "\n")
    proc = run_eib("validate", half, "--arch", "amd64")
    assert proc.returncode == 0, proc.stderr


def test_the_environment_limit_is_the_kernels() -> None:
    """An environment the check lets through, plus the run-time margin, starts a program;
    one past ARG_MAX does not."""
    from eib.compile.envsize import RUNTIME_MARGIN, check_env_size, exec_limit, variable_bytes

    def filled(total: int, prefix: str) -> dict[str, str]:
        env: dict[str, str] = {}
        while (left := total - sum(variable_bytes(k, v) for k, v in env.items())) > 0:
            name = f"{prefix}{len(env)}"
            env[name] = "x" * max(0, min(60_000, left - variable_bytes(name, "")))
        return env

    allowed = filled(exec_limit() - RUNTIME_MARGIN, "EIB_V")
    check_env_size(allowed)
    runtime = filled(RUNTIME_MARGIN - 4096, "EIB_R")  # the dirs, the commit, pass_env …
    started = subprocess.run(["/bin/true"], env={**allowed, **runtime}, check=False)
    assert started.returncode == 0
    if os.sysconf("SC_ARG_MAX") <= exec_limit():
        with pytest.raises(OSError, match="Argument list too long"):
            subprocess.run(["/bin/true"], env=filled(exec_limit() + 4096, "EIB_V"), check=False)
