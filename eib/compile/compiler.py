"""Recipe + variant → Plan.  Pure: reads files, never writes, needs no root.

This is the one place that knows how the typed recipe turns into work:
which hooks run (found and pinned by sha256), what the outputs are called,
which stages and steps there are, and what environment hooks see.  The
same inputs give a byte-identical plan and digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from eib import __version__
from eib.compile.buildroot_setting import resolve_buildroot
from eib.compile.carried import fold_remote, key_material
from eib.compile.hooklookup import find_hooks, hook_dirs
from eib.compile.trust import check_trust
from eib.errors import Origin, UserError
from eib.execute.stages import PLAN_STAGES
from eib.limits import check_length
from eib.load.interpolate import Interpolator
from eib.load.layers import FILE_KEYS, collect_files, resolve_variant, select_layers
from eib.load.merge import Event, Tree, merge_into
from eib.load.validation import recipe_error
from eib.load.yamlfile import KeyPath, parse_value
from eib.model.plan import (
    CACHEDIR_TOKEN,
    Outputs,
    Plan,
    PublishPlan,
    SecretRef,
    Stage,
)
from eib.model.recipe import FlatpakRemote, Recipe
from eib.paths import SYSCONFDIR
from eib.variant import FLATPAK_ARCHES, build_version, source_date_epoch

if TYPE_CHECKING:
    from eib.compile.locking import LockPins
from eib.secrets.tokens import token

COMPRESSED_SUFFIX = {"gz": "img.gz", "xz": "img.xz", "zstd": "img.zst"}


@dataclass(frozen=True)
class CompileRequest:
    """What to compile: one recipe, one variant, and what the command line adds.

    One object instead of the same five arguments through every command; a
    lock file is applied as data (pinned commits, the commit's time), never
    as `--set` strings.
    """

    recipe: Path
    variant: Mapping[str, str] = field(default_factory=dict)
    sets: tuple[str, ...] = ()
    localdir: Path | None = None
    lock: Path | None = None
    source_date_epoch: int | None = None  # the build's time; default SOURCE_DATE_EPOCH or now

    def for_variant(self, variant: Mapping[str, str]) -> CompileRequest:
        return replace(self, variant=dict(variant))


@dataclass
class CompileResult:
    """A plan plus what `--explain` needs to tell where values came from."""

    plan: Plan
    recipe: Recipe
    tree: Tree
    variant: dict[str, str]
    layers: list[str] = field(default_factory=list)


# The `build` keys `--set` may change: switches and settings, never the variant.
BUILD_SETS = {("build", "use_production_ostree"), ("build", "buildroot"),
              ("build", "buildroot_mounts")}


def is_legacy_tree(path: Path) -> bool:
    return path.is_dir() and (path / "defaults.ini").is_file()


def compile_recipe(
    path: Path,
    variant: Mapping[str, str] | None = None,
    sets: list[str] | None = None,
    localdir: Path | None = None,
) -> CompileResult:
    """`compile_plan` of a request made from these arguments (no lock)."""
    return compile_plan(CompileRequest(Path(path), dict(variant or {}), tuple(sets or ()),
                                       localdir))


def compile_plan(request: CompileRequest) -> CompileResult:
    """Compile a request; with a lock, the pinned commits and their time are applied."""
    if request.lock is None:
        return _compile(request, None)
    from eib.compile.locking import pins_for

    unpinned = _compile(request, None)
    return _compile(request, pins_for(request.lock, unpinned.plan))


def _compile(request: CompileRequest, pins: LockPins | None) -> CompileResult:
    path = Path(request.recipe)
    variant = dict(request.variant)
    localdir = request.localdir
    epoch: int | None = request.source_date_epoch
    if pins is not None:
        epoch = pins.epoch
    elif epoch is None:
        epoch = source_date_epoch()
    version = build_version(epoch)
    if is_legacy_tree(path):
        tree, var, layers, recipe_dir, private_refs = _legacy_tree(
            path, variant, localdir, version
        )
    elif path.is_dir():
        raise UserError(
            "a directory is accepted only as a legacy config dir (holding defaults.ini)",
            origin=Origin(str(path)),
        )
    else:
        tree, var, layers = _yaml_tree(path, variant, localdir, version)
        recipe_dir = path.resolve().parent
        private_refs = None
    _apply_sets(tree, list(request.sets))
    _seed_interpolated_defaults(tree)
    resolved = Interpolator(tree).resolve_all()
    _anchor_paths(resolved, tree)
    recipe = _validate(resolved, tree)
    if pins is not None:
        recipe = pins.apply(recipe)
    plan = _plan(path, recipe_dir, recipe, tree, localdir, private_refs, epoch)
    return CompileResult(plan, recipe, tree, var, layers)


def _yaml_tree(
    path: Path, given: dict[str, str], localdir: Path | None, version: str
) -> tuple[Tree, dict[str, str], list[str]]:
    docs = collect_files(path)
    variant = resolve_variant(docs, given)
    tree = Tree()
    _set_build(tree, variant, given, path.resolve().parent, localdir, version)
    layers = select_layers(docs, variant)
    for layer in layers:
        merge_into(tree, layer.data, layer.doc.origins, layer.label, (), layer.origin_prefix)
    return tree, variant, [layer.label for layer in layers]


def _legacy_tree(
    config_dir: Path,
    given: dict[str, str],
    localdir: Path | None,
    version: str,
) -> tuple[Tree, dict[str, str], list[str], Path, list[SecretRef]]:
    from eib.compat.to_recipe import load_legacy_tree

    legacy = load_legacy_tree(
        config_dir, given, localdir=localdir, cachedir=CACHEDIR_TOKEN, build_version=version,
        masked=True,
    )
    tree = Tree()
    merge_into(tree, legacy.recipe, legacy.recipe_origins, str(config_dir))
    variant = {
        k: str(tree.data["build"][k])
        for k in ("product", "branch", "arch", "platform", "personality", "series")
    }
    srcdir = Path(str(tree.data["build"].get("srcdir") or config_dir.resolve().parent))
    return tree, variant, legacy.files, srcdir, legacy.secret_refs


def _set_build(
    tree: Tree,
    variant: dict[str, str],
    given: dict[str, str],
    srcdir: Path,
    localdir: Path | None,
    version: str,
) -> None:
    build: dict[str, Any] = dict(variant)
    build.update(
        build_version=version,
        cachedir=CACHEDIR_TOKEN,
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
        # Checked before the item is parsed or echoed in any message.
        check_length(key, origin=None, key="--set")
        check_length(text, origin=None, key=f"--set {key}")
        origin = Origin(f"--set {item}")
        if not sep or not key or any(not part for part in key.split(".")):
            raise UserError("expected --set section.key=value", origin=origin)
        value = parse_value(text, "--set", tuple(key.split("."))) if text else ""
        parts: KeyPath = tuple(key.split("."))
        # The one build switch that is no variant attribute: --use-production-ostree.
        if parts[0] in ("build", "variant") and parts not in BUILD_SETS:
            raise UserError("set the variant with --product/--branch/... options", origin=origin)
        if parts[0] in FILE_KEYS:
            raise UserError(f"'{parts[0]}' belongs to a recipe file; --set changes sections",
                            origin=origin)
        if parts[0] == "secrets":
            # Never echo the item: its value is the secret.
            raise UserError(
                "--set cannot define secrets: its value would be in the plan and shell history",
                key="--set secrets",
                hint="use `eib run --secret NAME=@FILE` or NAME=env:VARIABLE",
            )
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        origins = {parts[: i + 1]: origin for i in range(len(parts))}
        merge_into(tree, nested, origins, f"--set {key}")


def _anchor(value: str, tree: Tree, path: KeyPath) -> str:
    """A relative file path is relative to the recipe file that wrote it."""
    if not value or value.startswith("/") or "://" in value or value.lstrip().startswith("-----"):
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
            for key in ("gpg_key", "repo_file", "url"):
                if isinstance(remote.get(key), str):
                    remote[key] = _anchor(remote[key], tree, ("flatpak", "remotes", name, key))
    secrets = resolved.get("secrets")
    if isinstance(secrets, dict):
        for name, secret in secrets.items():
            if isinstance(secret, dict) and isinstance(secret.get("file"), str):
                secret["file"] = _anchor(secret["file"], tree, ("secrets", name, "file"))


def _without_cachedir(resolved: dict[str, Any]) -> dict[str, Any]:
    """`resolved` less `build.cachedir` (a legacy tree's untyped build keys sit under extra)."""
    out = dict(resolved)
    if isinstance(out.get("build"), dict):
        out["build"] = {k: v for k, v in out["build"].items() if k != "cachedir"}
    extra = out.get("extra")
    if isinstance(extra, dict) and isinstance(extra.get("build"), dict):
        build = {k: v for k, v in extra["build"].items() if k != "cachedir"}
        out["extra"] = {**extra, "build": build}
    return out


def _validate(resolved: dict[str, Any], tree: Tree) -> Recipe:
    # `${build:cachedir}` is there to be interpolated; the dir itself is an argument
    # of the run, never plan content.
    resolved = _without_cachedir(resolved)
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
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        raise recipe_error(err, tree) from None
    return recipe


def _fold_remote(name: str, remote: FlatpakRemote, tree: Tree,
                 keyless_ok: bool) -> FlatpakRemote:
    """`fold_remote`, its errors placed at the recipe line of the key (or of the remote)."""
    try:
        return fold_remote(name, remote, keyless_ok=keyless_ok)
    except UserError as err:
        if err.origin is not None or err.key is None:
            raise
        field = err.key.rpartition(".")[2]
        origin = tree.origin(("flatpak", "remotes", name, field))
        raise UserError(err.message, origin=origin, key=err.key, hint=err.hint) from None


def _plan(
    path: Path,
    recipe_dir: Path,
    recipe: Recipe,
    tree: Tree,
    localdir: Path | None,
    private_refs: list[SecretRef] | None,
    epoch: int | None,
) -> Plan:
    from eib.compile.envsize import check_env_size
    from eib.compile.hookenv import config_sections, hook_view, recipe_env
    from eib.envnames import env_name

    legacy = is_legacy_tree(path)
    build = resolve_buildroot(recipe.build, recipe.extra, tree, legacy)
    hooks = find_hooks(recipe, tree, hook_dirs(recipe_dir, localdir, legacy))
    # Refused before a key or repo file is read: a blind remote, a key over http.
    own_install = any(h.group == "image" and h.name == "50-flatpak.chroot" and not h.native
                      for h in hooks)
    warnings = check_trust(recipe, tree, flatpak_by_hook=own_install)
    flatpak = recipe.flatpak
    flatpak = flatpak.model_copy(
        update={
            "arch": flatpak.arch or FLATPAK_ARCHES[build.arch],
            "remotes": {n: _fold_remote(n, r, tree, own_install)
                        for n, r in flatpak.remotes.items()},
        }
    )
    ostree = recipe.ostree
    ostree = ostree.model_copy(
        update={
            "ref_deploy": ostree.ref_deploy or ostree.ref,
            "gpg_keys": [key_material(k, key="ostree.gpg_keys") for k in ostree.gpg_keys],
        }
    )
    image = recipe.image
    if image.vm_image and build.arch != "amd64":
        # The OVF zip is an amd64 VM: none for other arches, as the legacy builder
        # did, but said in the plan and the build log rather than silently.
        warnings.append(f"image.vm_image: no OVF zip for {build.arch} (it is an amd64 "
                        "virtual machine)")
        image = image.model_copy(update={"vm_image": False})
    if image.signing_keyid and not image.gpg_homedir:
        # The host's signing keyring, where the legacy builder always looked.
        image = image.model_copy(update={"gpg_homedir": f"{build.sysconfdir}/gnupg"})
    written, recipe = recipe, recipe.model_copy(
        update={"flatpak": flatpak, "ostree": ostree, "image": image})
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
    secrets = _secret_refs(recipe, tree, private_refs)
    seen_by_hooks = hook_view(recipe, written)
    env = recipe_env(seen_by_hooks, outversion)
    tokens = {var: token(name) for var, name in _secret_option_env(recipe).items()}
    for var, value in tokens.items():
        if var in env:
            env[var] = value
    for ref in private_refs or []:  # as a converted recipe's secrets: section shows them
        env[env_name("secrets", ref.name)] = token(ref.name)
    env = dict(sorted(env.items()))
    check_env_size(env)
    config = config_sections(seen_by_hooks, tokens)
    if private_refs:
        config["secrets"] = dict(sorted(
            {**config.get("secrets", {}), **{r.name: token(r.name) for r in private_refs}}.items()
        ))
    plan = Plan(
        eib_version=__version__,
        recipe=path.resolve().name,
        source_date_epoch=epoch,
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
        config=config,
        pass_env=recipe.hooks.pass_env,
        warnings=warnings,
        outputs=outputs,
        stages=[],
    )
    # What each stage will do, as its one definition (eib.execute.stages) lists it.
    stages = [Stage(name=s.name, steps=s.steps(plan)) for s in PLAN_STAGES]
    return plan.model_copy(update={"stages": stages}).with_digest()


def _secret_option_env(recipe: Recipe) -> dict[str, str]:
    """A secret named `section.key` (a converted private INI value) stands for
    EIB_SECTION_KEY: variable → secret name."""
    from eib.envnames import env_name

    return {env_name(*n.split(".", 1)): n for n in recipe.secrets if "." in n.strip(".")}


def _secret_refs(
    recipe: Recipe, tree: Tree, private_refs: list[SecretRef] | None
) -> list[SecretRef]:
    """The recipe's secrets and a legacy tree's private options, by name."""
    from eib.secrets.refs import secret_refs

    origins = {name: tree.origin(("secrets", name, "value")) for name in recipe.secrets}
    refs = {r.name: r for r in secret_refs(dict(recipe.secrets), origins)}
    refs.update({r.name: r for r in private_refs or []})
    return [refs[name] for name in sorted(refs)]
