"""An unsigned OS builds only when the recipe says gpg_verify: false, and the log says so."""

from __future__ import annotations

from .conftest import Build, Served, Signing, write_recipe


def test_unsigned_os_needs_explicit_gpg_verify_false_and_is_logged(
    build: Build, served: Served, signing: Signing
) -> None:
    write_recipe(build.recipe.parent, served, signing, repo="unsigned",
                 ostree={"gpg_keys": []})
    refused = build.run()
    assert refused.returncode == 2
    assert "ostree.gpg_keys: no gpg_keys" in refused.stderr
    assert not build.work.exists()

    write_recipe(build.recipe.parent, served, signing, repo="unsigned",
                 ostree={"gpg_keys": [], "gpg_verify": False})
    proc = build.run()
    assert proc.returncode == 0, proc.stderr
    assert "warning: ostree.gpg_verify is false" in proc.stdout
    log = (build.out / "build.txt").read_text()
    url = f"{served.url}/unsigned"
    assert f"warning: ostree.gpg_verify is false: the OS from {url} is not verified" in log
