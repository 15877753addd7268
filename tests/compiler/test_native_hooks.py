"""Legacy hook names eib implements itself: its step at the hook's place, unless the
recipe's checkout (or the localdir) ships its own file under that name."""

from __future__ import annotations

from pathlib import Path

from eib.compile.compiler import compile_recipe
from eib.execute.stages import installs_flatpaks, publish_at, publish_first

RECIPE = """
    variant: {product: demo}
    ostree: {url: "https://ostree.example.org/repo", ref: os/demo/amd64/master,
             gpg_verify: false}
    flatpak:
      remotes:
        apps: {url: "https://flatpak.example.org/repo", gpg_verify: false, apps: [org.x.App]}
    publish:
      targets:
        - {kind: s3, bucket: images}
        - {kind: rsync, host: images.example.org, path: /srv/images}
        - {kind: local, path: /srv/mirror}
    hooks:
      image: [50-flatpak.chroot, 40-before, 60-after]
      publish: [40-build-log, 45-publish-s3, 50-publish]
"""


def _steps(plan, stage: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.name for s in plan.stage(stage).steps]


def _hooks_dir(top: Path, *names: tuple[str, str]) -> None:
    for group, name in names:
        path = top / "hooks" / group / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"echo {name}\n")


def test_native_steps_take_the_hooks_places(write, tmp_path: Path) -> None:
    _hooks_dir(tmp_path, ("image", "40-before"), ("image", "60-after"))
    plan = compile_recipe(write("recipe.yaml", RECIPE), {"arch": "amd64"}).plan
    flatpak = next(h for h in plan.hooks if h.name == "50-flatpak.chroot")
    assert (flatpak.found_in, flatpak.native, flatpak.content) == ("native", "flatpak-install", "")
    assert installs_flatpaks(plan)
    image = _steps(plan, "image")
    assert image[:4] == ["deploy", "hook 40-before", "hook 50-flatpak.chroot", "hook 60-after"]
    assert "flatpak" not in image  # not a second time after the hooks
    # The local target first; S3 and rsync at their hooks' places, after 40-build-log.
    assert [t.kind for t in publish_first(plan)] == ["local"]
    assert [t.kind for t in publish_at(plan, "publish-s3")] == ["s3"]
    assert _steps(plan, "publish") == [
        "local /srv/mirror", "hook 40-build-log", "s3 s3://images",
        "rsync images.example.org:/srv/images"]


def test_the_checkouts_own_hooks_replace_eibs_steps(write, tmp_path: Path) -> None:
    """A legacy checkout shipping its 50-flatpak.chroot and 45-publish-s3 runs those,
    and eib neither installs the apps nor uploads to S3 a second time."""
    _hooks_dir(tmp_path, ("image", "40-before"), ("image", "60-after"),
               ("image", "50-flatpak.chroot"), ("publish", "45-publish-s3"))
    plan = compile_recipe(write("recipe.yaml", RECIPE), {"arch": "amd64"}).plan
    flatpak = next(h for h in plan.hooks if h.name == "50-flatpak.chroot")
    assert (flatpak.found_in, flatpak.native) == ("recipe", None)
    assert not installs_flatpaks(plan)
    assert "flatpak" not in _steps(plan, "image")
    assert [t.kind for t in publish_first(plan)] == ["local"]
    assert publish_at(plan, "publish-s3") == []
    assert "s3 s3://images" not in _steps(plan, "publish")


def test_without_the_legacy_names_eib_installs_after_the_image_hooks(
    write, tmp_path: Path
) -> None:
    _hooks_dir(tmp_path, ("image", "40-before"), ("image", "60-after"))
    text = RECIPE.replace("50-flatpak.chroot, ", "").replace(
        "[40-build-log, 45-publish-s3, 50-publish]", "[40-build-log]")
    plan = compile_recipe(write("recipe.yaml", text), {"arch": "amd64"}).plan
    assert _steps(plan, "image")[:4] == ["deploy", "hook 40-before", "hook 60-after", "flatpak"]
    assert [t.kind for t in publish_first(plan)] == ["s3", "rsync", "local"]


def test_a_keyless_remote_is_the_checkouts_own_flatpak_hooks_business(
    write, tmp_path: Path
) -> None:
    """The legacy 50-flatpak.chroot verified the apps against the OS's keyring: with
    that hook in the checkout a remote without a key plans (with a warning); with
    eib's own install it is refused."""
    import pytest

    from eib.errors import UserError

    keyless = RECIPE.replace(', gpg_verify: false, apps: [org.x.App]}', ', apps: [org.x.App]}')
    assert keyless != RECIPE
    _hooks_dir(tmp_path, ("image", "40-before"), ("image", "60-after"))
    with pytest.raises(UserError, match="no gpg_key"):
        compile_recipe(write("recipe.yaml", keyless), {"arch": "amd64"})
    _hooks_dir(tmp_path, ("image", "50-flatpak.chroot"))
    plan = compile_recipe(write("recipe.yaml", keyless), {"arch": "amd64"}).plan
    assert plan.flatpak.remotes["apps"].gpg_key == ""
    assert any("flatpak.remotes.apps has no key: the checkout's own 50-flatpak.chroot" in w
               for w in plan.warnings)
