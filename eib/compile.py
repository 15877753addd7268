"""Recipe + variant → Plan.  Pure: reads files, never writes, needs no root.

This is the one place that knows how the typed recipe turns into work:
which hooks run (found and pinned by sha256), what the outputs are called,
which stages and steps there are, and what environment hooks see.  The
same inputs give a byte-identical plan and digest.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from eib import __version__
from eib.errors import Origin, UserError
from eib.load.interpolate import Interpolator
from eib.load.layers import collect_files, resolve_variant, select_layers
from eib.load.merge import Event, Tree, merge_into
from eib.load.validation import recipe_error
from eib.load.yamlfile import KeyPath
from eib.model.plan import (
    REDACTED,
    HookStep,
    Outputs,
    Plan,
    PublishPlan,
    SecretRef,
    Stage,
    Step,
)
from eib.model.recipe import HOOK_GROUPS, Recipe
from eib.paths import BUILTIN_HOOKS_DIR, SYSCONFDIR

DEFAULT_CACHE_DIR = "/var/cache/eib"
COMPRESSED_SUFFIX = {"gz": "img.gz", "xz": "img.xz", "zstd": "img.zst"}
FLATPAK_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i386"}


@dataclass
class CompileResult:
    """A plan plus what `--explain` needs to tell where values came from."""

    plan: Plan
    recipe: Recipe
    tree: Tree
    variant: dict[str, str]
    layers: list[str] = field(default_factory=list)


def build_version_now() -> str:
    """UTC `%y%m%d-%H%M%S`, fixed by SOURCE_DATE_EPOCH for reproducible plans."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    try:
        stamp = time.gmtime(int(epoch)) if epoch else time.gmtime()
    except ValueError:
        raise UserError(f"SOURCE_DATE_EPOCH must be an integer, got {epoch!r}") from None
    return time.strftime("%y%m%d-%H%M%S", stamp)


def is_legacy_tree(path: Path) -> bool:
    return path.is_dir() and (path / "defaults.ini").is_file()


def compile_recipe(
    path: Path,
    variant: dict[str, str] | None = None,
    sets: list[str] | None = None,
    localdir: Path | None = None,
    *,
    cachedir: str | None = None,
    build_version: str | None = None,
) -> CompileResult:
    """Compile the recipe at `path` (a YAML file or a legacy config dir)."""
    path = Path(path)
    variant = dict(variant or {})
    cachedir = cachedir or os.environ.get("EIB_CACHE_DIR") or DEFAULT_CACHE_DIR
    version = build_version or build_version_now()
    if is_legacy_tree(path):
        tree, var, layers, recipe_dir, private = _legacy_tree(
            path, variant, localdir, cachedir, version
        )
    elif path.is_dir():
        raise UserError(
            "a directory is accepted only as a legacy config dir (holding defaults.ini)",
            origin=Origin(str(path)),
        )
    else:
        tree, var, layers = _yaml_tree(path, variant, localdir, cachedir, version)
        recipe_dir = path.resolve().parent
        private = set()
    _apply_sets(tree, sets or [])
    _seed_interpolated_defaults(tree)
    resolved = Interpolator(tree).resolve_all()
    _anchor_paths(resolved, tree)
    recipe = _validate(resolved, tree)
    plan = _plan(path, recipe_dir, recipe, tree, localdir, private)
    return CompileResult(plan, recipe, tree, var, layers)


def _yaml_tree(
    path: Path, given: dict[str, str], localdir: Path | None, cachedir: str, version: str
) -> tuple[Tree, dict[str, str], list[str]]:
    docs = collect_files(path)
    variant = resolve_variant(docs, given)
    tree = Tree()
    _set_build(tree, variant, given, path.resolve().parent, localdir, cachedir, version)
    layers = select_layers(docs, variant)
    for layer in layers:
        merge_into(tree, layer.data, layer.doc.origins, layer.label, (), layer.origin_prefix)
    return tree, variant, [layer.label for layer in layers]


def _legacy_tree(
    config_dir: Path,
    given: dict[str, str],
    localdir: Path | None,
    cachedir: str,
    version: str,
) -> tuple[Tree, dict[str, str], list[str], Path, set[str]]:
    from eib.compat.to_recipe import load_legacy_tree

    legacy = load_legacy_tree(
        config_dir, given, localdir=localdir, cachedir=cachedir, build_version=version
    )
    tree = Tree()
    merge_into(tree, legacy.recipe, legacy.recipe_origins, str(config_dir))
    variant = {
        k: str(tree.data["build"][k])
        for k in ("product", "branch", "arch", "platform", "personality", "series")
    }
    srcdir = Path(str(tree.data["build"].get("srcdir") or config_dir.resolve().parent))
    return tree, variant, legacy.files, srcdir, set(legacy.private_env)


def _set_build(
    tree: Tree,
    variant: dict[str, str],
    given: dict[str, str],
    srcdir: Path,
    localdir: Path | None,
    cachedir: str,
    version: str,
) -> None:
    build: dict[str, Any] = dict(variant)
    build.update(
        build_version=version,
        cachedir=cachedir,
        srcdir=str(srcdir),
        localdir=str(localdir.resolve()) if localdir else "",
        localdatadir=str(localdir.resolve() / "data") if localdir else "",
        sysconfdir=SYSCONFDIR,
    )
    tree.data["build"] = build
    for key, value in build.items():
        source = "command line" if key in given else "variant"
        tree.history[("build", key)] = [Event("set", value, Origin(source), source)]


def _seed_interpolated_defaults(tree: Tree) -> None:
    """Defaults that hold `${...}` join the tree so they are interpolated too."""
    from eib.model.recipe import Publish

    publish = tree.data.setdefault("publish", {})
    if isinstance(publish, dict) and "path" not in publish:
        publish["path"] = Publish.model_fields["path"].default


def _apply_sets(tree: Tree, sets: list[str]) -> None:
    for item in sets:
        key, sep, text = item.partition("=")
        origin = Origin(f"--set {item}")
        if not sep or not key or any(not part for part in key.split(".")):
            raise UserError("expected --set section.key=value", origin=origin)
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            value = text
        parts: KeyPath = tuple(key.split("."))
        if parts[0] == "build":
            raise UserError("set the variant with --product/--branch/... options", origin=origin)
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        origins = {parts[: i + 1]: origin for i in range(len(parts))}
        merge_into(tree, nested, origins, f"--set {key}")


def _anchor(value: str, tree: Tree, path: KeyPath) -> str:
    """A relative file path is relative to the recipe file that wrote it."""
    if not value or value.startswith("/") or "://" in value:
        return value
    origin = tree.origin(path)
    base = Path(origin.file).parent if origin and Path(origin.file).is_file() else Path.cwd()
    return str((base / value).resolve())


def _anchor_paths(resolved: dict[str, Any], tree: Tree) -> None:
    """Make the file paths a recipe names absolute, so a plan runs from any cwd."""
    ostree = resolved.get("ostree")
    if isinstance(ostree, dict) and isinstance(ostree.get("gpg_keys"), list):
        path: KeyPath = ("ostree", "gpg_keys")
        ostree["gpg_keys"] = [
            _anchor(k, tree, path) if isinstance(k, str) else k for k in ostree["gpg_keys"]
        ]
    image = resolved.get("image")
    if isinstance(image, dict) and isinstance(image.get("gpg_homedir"), str):
        image["gpg_homedir"] = _anchor(image["gpg_homedir"], tree, ("image", "gpg_homedir"))
    remotes = (resolved.get("flatpak") or {}).get("remotes")
    if isinstance(remotes, dict):
        for name, remote in remotes.items():
            if not isinstance(remote, dict):
                continue
            for key in ("gpg_key", "repo_file"):
                if isinstance(remote.get(key), str):
                    remote[key] = _anchor(remote[key], tree, ("flatpak", "remotes", name, key))
    secrets = resolved.get("secrets")
    if isinstance(secrets, dict):
        for name, secret in secrets.items():
            if isinstance(secret, dict) and isinstance(secret.get("file"), str):
                secret["file"] = _anchor(secret["file"], tree, ("secrets", name, "file"))


def _validate(resolved: dict[str, Any], tree: Tree) -> Recipe:
    known = set(Recipe.model_fields) - {"extra"}
    data = {k: v for k, v in resolved.items() if k in known}
    extra = {k: v for k, v in resolved.items() if k not in known and k != "extra"}
    # Options of known sections that the models do not type (legacy INI keys such
    # as [image] branding_logo) arrive under `extra`; hooks still read them.
    for name, options in (resolved.get("extra") or {}).items():
        if isinstance(options, dict) and isinstance(extra.get(name), dict):
            extra[name] = {**options, **extra[name]}
        else:
            extra.setdefault(name, options)
    for name, section in extra.items():
        if not isinstance(section, dict):
            raise UserError(
                "a section must be a mapping of keys", origin=tree.origin((name,)), key=name
            )
    data["extra"] = extra
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise recipe_error(err, tree) from None


def _find_hook(group: str, name: str, dirs: list[Path]) -> Path | None:
    for directory in dirs:
        candidate = directory / group / name
        if candidate.is_file():
            return candidate.resolve()
    return None


def _hooks(recipe: Recipe, tree: Tree, dirs: list[Path]) -> list[HookStep]:
    steps = []
    for group in HOOK_GROUPS:
        for name in sorted(getattr(recipe.hooks, group)):
            found = _find_hook(group, name, dirs)
            if found is None:
                searched = ", ".join(str(d / group) for d in dirs)
                raise UserError(
                    f"hook '{name}' not found (searched {searched})",
                    origin=_added_at(tree, ("hooks", group), name),
                    key=f"hooks.{group}",
                )
            data = found.read_bytes()
            steps.append(
                HookStep(
                    group=group,
                    name=name,
                    path=str(found),
                    sha256=hashlib.sha256(data).hexdigest(),
                    chroot=name.endswith(".chroot"),
                    executable=os.access(found, os.X_OK),
                )
            )
    return steps


def _added_at(tree: Tree, path: KeyPath, value: str) -> Origin | None:
    for event in reversed(tree.history.get(path, [])):
        if event.action in ("add", "set") and value in (event.value or []):
            return event.origin
    return tree.origin(path)


def _plan(
    path: Path,
    recipe_dir: Path,
    recipe: Recipe,
    tree: Tree,
    localdir: Path | None,
    private_env: set[str],
) -> Plan:
    from eib.hookenv import recipe_env

    build = recipe.build
    # A recipe's own hooks/ come first; for a legacy tree the localdir's hooks
    # come before the checkout's, as the legacy builder looked them up.
    dirs = [recipe_dir / "hooks"]
    if localdir is not None:
        local = localdir.resolve() / "hooks"
        dirs = (
            [local, *dirs] if private_env is not None and is_legacy_tree(path) else [*dirs, local]
        )
    dirs.append(BUILTIN_HOOKS_DIR)
    hooks = _hooks(recipe, tree, dirs)
    flatpak = recipe.flatpak
    if not flatpak.arch:
        flatpak = flatpak.model_copy(update={"arch": FLATPAK_ARCH[build.arch]})
    ostree = recipe.ostree
    if not ostree.ref_deploy:
        ostree = ostree.model_copy(update={"ref_deploy": ostree.ref})
    recipe = recipe.model_copy(update={"flatpak": flatpak, "ostree": ostree})
    outversion = (
        f"{build.product}-{build.branch}-{build.arch}-{build.platform}."
        f"{build.build_version}.{build.personality}"
    )
    outputs = Outputs(
        outversion=outversion,
        image=f"{outversion}.img",
        compressed=f"{outversion}.{COMPRESSED_SUFFIX[recipe.image.compression]}",
        manifest=f"{outversion}.manifest.json",
        config=f"{outversion}.config.yaml",
        plan=f"{outversion}.plan.json",
    )
    secrets = [
        SecretRef(
            name=name,
            source="value" if s.value is not None else "file" if s.file else "env",
            where=str(tree.origin(("secrets", name)) or path)
            if s.value is not None
            else (s.file or s.env or ""),
        )
        for name, s in sorted(recipe.secrets.items())
    ]
    from eib.trust import check_trust

    warnings = check_trust(recipe, tree)
    env = recipe_env(recipe)
    for name in private_env | _secret_option_env(recipe):
        if name in env:
            env[name] = REDACTED
    plan = Plan(
        eib_version=__version__,
        recipe=str(path.resolve()),
        recipe_dir=str(recipe_dir),
        build=build,
        ostree=ostree,
        image=recipe.image,
        flatpak=flatpak,
        hooks=hooks,
        publish=PublishPlan(path=recipe.publish.path, targets=recipe.publish.targets),
        demo=recipe.demo,
        secrets=secrets,
        extra=recipe.extra,
        env=env,
        pass_env=recipe.hooks.pass_env,
        warnings=warnings,
        outputs=outputs,
        stages=_stages(recipe, hooks),
    )
    return plan.with_digest()


def _secret_option_env(recipe: Recipe) -> set[str]:
    """A secret named `section.key` (a converted private INI value) hides EIB_SECTION_KEY."""
    from eib.hookenv import env_name

    return {env_name(*name.split(".", 1)) for name in recipe.secrets if "." in name.strip(".")}


def _hook_steps(hooks: list[HookStep], group: str) -> list[Step]:
    return [
        Step(name=f"hook {h.name}", description=f"{h.group} hook {h.path}")
        for h in hooks
        if h.group == group
    ]


def _stages(recipe: Recipe, hooks: list[HookStep]) -> list[Stage]:
    ost, img = recipe.ostree, recipe.image
    ref = ost.commit or ost.ref
    image_steps = [
        *_hook_steps(hooks, "content"),
        Step(name="deploy", description=f"deploy {ref} as os '{ost.os}'"),
        *_hook_steps(hooks, "image"),
    ]
    fp = recipe.flatpak
    remotes = [n for n, r in sorted(fp.remotes.items()) if r.enable and (r.apps or r.runtimes)]
    if fp.enable and remotes:
        count = sum(len(fp.remotes[n].apps) + len(fp.remotes[n].runtimes) for n in remotes)
        image_steps.append(
            Step(
                name="flatpak",
                description=f"install {count} refs from {', '.join(remotes)}",
            )
        )
    image_steps.append(Step(name="disk", description=f"assemble {img.partition_table} disk image"))
    image_steps.append(Step(name="compress", description=f"compress with {img.compression}"))
    image_steps.append(Step(name="checksum", description="sha256 of each image"))
    if img.signing_keyid:
        image_steps.append(
            Step(name="sign", description=f"detached signatures by {img.signing_keyid}")
        )
    for flag, label in (("qcow2", "qcow2 image"), ("iso", "ISO image"), ("boot_zip", "boot.zip")):
        if getattr(img, flag):
            image_steps.append(Step(name=flag.replace("_", "."), description=label))
    publish_steps = [
        Step(name=f"{t.kind} {t.bucket or t.host or t.path}", description=f"publish to {t.kind}")
        for t in recipe.publish.targets
    ] + _hook_steps(hooks, "publish")
    return [
        Stage(name="ostree", steps=[Step(name="pull", description=f"pull {ref} from {ost.url}")]),
        Stage(name="image", steps=image_steps),
        Stage(
            name="manifest",
            steps=[
                Step(name="basic-info", description="product, variant and builder facts"),
                *_hook_steps(hooks, "manifest"),
                Step(name="merge", description="merge JSON fragments into the manifest"),
            ],
        ),
        Stage(name="publish", steps=publish_steps),
        Stage(name="error", steps=_hook_steps(hooks, "error")),
    ]
