"""Resolved legacy sections → the raw recipe dict the compiler validates.

INI key names of known sections mirror the recipe model's field names
(documented in `config/defaults.ini`), so this mapping asks the models for
each field's type instead of keeping its own table. Keys a model does not
know stay available to hooks: they go to `extra` under their section.
"""

from __future__ import annotations

import fnmatch
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from eib.compat.reader import MERGED_OPTIONS
from eib.errors import Origin, UserError
from eib.model import recipe as model
from eib.paths import SYSCONFDIR

HOOK_SECTIONS = ("content", "image", "manifest", "publish", "error")
REMOTE_PREFIX = "flatpak-remote-"
TARGET_PREFIX = "publish-target-"
_TRUE = ("1", "yes", "true", "on")
_FALSE = ("0", "no", "false", "off")

SECTION_MODELS: dict[str, type[BaseModel]] = {
    "ostree": model.Ostree,
    "image": model.Image,
    "flatpak": model.Flatpak,
    "demo": model.Demo,
}

OriginOf = typing.Callable[[str, str], Origin | None]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The field's type without Optional/Annotated, and whether None is allowed."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation, optional


def convert_value(
    cls: type[BaseModel], key: str, value: str, where: tuple[str, str], origin_of: OriginOf
) -> Any:
    """An INI string as the model field's type: bool, int, list or str."""
    annotation, optional = _unwrap(cls.model_fields[key].annotation)
    base = typing.get_origin(annotation) or annotation
    text = value.strip()
    if base is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise UserError(
            f"'{value}' is not a boolean (true/false)",
            origin=origin_of(*where),
            key=f"[{where[0]}] {where[1]}",
        )
    if base is int:
        if not text and optional:
            return None
        try:
            return int(text)
        except ValueError:
            raise UserError(
                f"'{value}' is not an integer",
                origin=origin_of(*where),
                key=f"[{where[0]}] {where[1]}",
            ) from None
    if base is list:
        return value.split()
    return value


def _is_nested(annotation: Any) -> bool:
    ann, _ = _unwrap(annotation)
    if typing.get_origin(ann) is dict:
        return True
    if typing.get_origin(ann) is list:
        args = typing.get_args(ann)
        return bool(args) and isinstance(args[0], type) and issubclass(args[0], BaseModel)
    return isinstance(ann, type) and issubclass(ann, BaseModel)


KeyPath = tuple[str, ...]
# INI section names that would collide with the recipe's own top-level keys.
_RESERVED = ("eib", "extends", "variant", "overlays", "hooks", "secrets", "extra", "build")


def free_section(section: str) -> KeyPath:
    """Where an unknown INI section goes: top level, unless a recipe file could not
    hold it there (a reserved name, or one a recipe would reject as a typo of a
    known section); then below `extra`."""
    from eib.errors import did_you_mean

    if section in _RESERVED:
        return ("extra", section)
    if did_you_mean(section, [*model.KNOWN_SECTIONS, "eib", "extends", "variant", "overlays"]):
        return ("extra", section)
    return (section,)


def field_kind(cls: type[BaseModel], key: str) -> str | None:
    """bool, int, list or str for a plain field of `cls`; None when unknown or nested."""
    field = cls.model_fields.get(key)
    if field is None or _is_nested(field.annotation):
        return None
    annotation, _ = _unwrap(field.annotation)
    base = typing.get_origin(annotation) or annotation
    if base is bool:
        return "bool"
    if base is int:
        return "int"
    if base is list:
        return "list"
    return "str"


def escape(value: Any) -> Any:
    """Resolved strings are final: `$` is doubled so recipe interpolation keeps it."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [escape(v) for v in value]
    return value


def to_recipe(
    sections: Mapping[str, Mapping[str, str]],
    *,
    private_keys: frozenset[tuple[str, str]] = frozenset(),
    origin_of: OriginOf = lambda s, k: None,
) -> tuple[dict[str, Any], dict[KeyPath, Origin]]:
    """Map resolved INI sections onto the recipe (see module docstring).

    Returns the raw recipe dict and the origin of every key path it sets.
    Sections eib does not know become top-level free-form sections; keys a
    known section's model lacks go to `extra.<section>`.
    """
    recipe: dict[str, Any] = {"eib": 1}
    origins: dict[KeyPath, Origin] = {}

    def put(path: KeyPath, value: Any, where: tuple[str, str]) -> None:
        node = recipe
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = escape(value)
        origin = origin_of(*where)
        if origin is not None:
            origins[path] = origin

    def typed(
        cls: type[BaseModel], section: str, prefix: KeyPath, skip: tuple[str, ...] = ()
    ) -> None:
        for key, value in sections[section].items():
            if key in skip:
                continue
            field = cls.model_fields.get(key)
            if field is None or _is_nested(field.annotation):
                put(("extra", section, key), value, (section, key))
            else:
                put(
                    (*prefix, key),
                    convert_value(cls, key, value, (section, key), origin_of),
                    (section, key),
                )

    targets: list[dict[str, Any]] = []
    for section, options in sections.items():
        if section in HOOK_SECTIONS and "hooks" in options:
            put(("hooks", section), options["hooks"].split(), (section, "hooks"))
        if section == "build":
            typed(model.Build, section, ("build",))
        elif section in SECTION_MODELS:
            typed(SECTION_MODELS[section], section, (section,), skip=("hooks",))
        elif section.startswith(REMOTE_PREFIX) and len(section) > len(REMOTE_PREFIX):
            name = section[len(REMOTE_PREFIX) :]
            recipe.setdefault("flatpak", {}).setdefault("remotes", {})[name] = {}
            typed(model.FlatpakRemote, section, ("flatpak", "remotes", name))
        elif section == "publish":
            _publish(options, put)
        elif section.startswith(TARGET_PREFIX) and len(section) > len(TARGET_PREFIX):
            target_model = model.TARGET_MODELS.get(options.get("kind", ""))
            if target_model is None:
                raise UserError(
                    "a publish target needs kind = s3, rsync or local",
                    origin=origin_of(section, "kind" if "kind" in options else ""),
                    key=f"[{section}] kind",
                )
            target: dict[str, Any] = {}
            for key, value in options.items():
                if key in target_model.model_fields:
                    where = (section, key)
                    target[key] = escape(
                        convert_value(target_model, key, value, where, origin_of)
                    )
                else:
                    put(("extra", section, key), value, (section, key))
            targets.append(target)
        else:
            for key, value in options.items():
                if section in HOOK_SECTIONS and key == "hooks":
                    continue
                put((*free_section(section), key), value, (section, key))
    legacy_targets = _legacy_targets(sections, recipe, origin_of)
    if legacy_targets:
        recipe.setdefault("publish", {})["targets"] = legacy_targets
        where = ("publish", "s3_bucket") if sections.get("publish", {}).get("s3_bucket") else (
            "image", "upload_api_host")
        origin = origin_of(*where)
        if origin is not None:
            origins[("publish", "targets")] = origin
    if targets:
        recipe.setdefault("publish", {}).setdefault("targets", []).extend(targets)
    for s, k in sorted(private_keys):
        if k in sections.get(s, {}):
            put(("secrets", f"{s}.{k}", "value"), sections[s][k], (s, k))
    return recipe, origins


def _publish(options: Mapping[str, str], put: typing.Callable[..., None]) -> None:
    """`[publish]`: path and free keys; the S3 keys become a target (`_legacy_targets`)."""
    for key, value in options.items():
        if key == "path":
            put(("publish", "path"), value, ("publish", key))
        elif key not in ("hooks", "s3_bucket", "s3_region", "s3_endpoint_url"):
            put(("extra", "publish", key), value, ("publish", key))


def _legacy_targets(
    sections: Mapping[str, Mapping[str, str]], recipe: dict[str, Any], origin_of: OriginOf
) -> list[dict[str, Any]]:
    """The targets the legacy publish hooks uploaded to, with their host credentials.

    `[publish] s3_bucket`/`s3_region` (and eib's `s3_endpoint_url`) are the S3
    bucket `45-publish-s3` copied to with `${sysconfdir}/aws-credentials`;
    `[image] upload_api_host`/`user`/`path` the server `50-publish` rsynced
    to with `${sysconfdir}/ssh-key.pem`, into `destdir`.  A credentials file that exists
    becomes a file secret; without one boto3's and ssh's usual ways apply,
    as they did for the legacy hooks.
    """
    publish, image = sections.get("publish", {}), sections.get("image", {})
    sysconfdir = Path(sections.get("build", {}).get("sysconfdir") or SYSCONFDIR)
    secrets: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    if publish.get("s3_bucket", "").strip():
        s3: dict[str, Any] = {"kind": "s3", "bucket": escape(publish["s3_bucket"].strip())}
        for key, field in (("s3_region", "region"), ("s3_endpoint_url", "endpoint_url")):
            if publish.get(key, "").strip():
                s3[field] = escape(publish[key].strip())
        if _host_file_secret(sysconfdir / "aws-credentials", AWS_SECRET, secrets):
            s3["credentials_secret"] = AWS_SECRET
        targets.append(s3)
    if image.get("upload_api_host", "").strip():
        rsync: dict[str, Any] = {
            "kind": "rsync",
            "host": escape(image["upload_api_host"].strip()),
            "user": escape(image.get("user", "").strip() or "uploader"),
            "path": escape(_rsync_path(sections, origin_of)),
        }
        if _host_file_secret(sysconfdir / "ssh-key.pem", SSH_SECRET, secrets):
            rsync["identity_secret"] = SSH_SECRET
        targets.append(rsync)
    if secrets:
        recipe.setdefault("secrets", {}).update(secrets)
    return targets


def _host_file_secret(path: Path, name: str, secrets: dict[str, Any]) -> bool:
    """Add `path` as the file secret `name` when the build host has it."""
    if path.is_file():
        secrets[name] = {"file": escape(str(path))}
    return name in secrets


def _rsync_path(sections: Mapping[str, Mapping[str, str]], origin_of: OriginOf) -> str:
    """The dir above each build: `destdir` (`${path}/${publish:path}` by default) less the
    build's path, as eib's rsync target puts a build at `<path>/<publish.path>`."""
    image = sections.get("image", {})
    destdir = image.get("destdir", "").strip().rstrip("/")
    if not destdir:
        return image.get("path", "").strip() or "/srv/images/www"
    build_path = sections.get("publish", {}).get("path", "").strip().strip("/")
    if build_path and destdir.endswith(f"/{build_path}"):
        return destdir[: -len(build_path) - 1] or "/"
    raise UserError(
        f"{destdir!r} does not end with the build's [publish] path {build_path!r}: eib "
        "uploads each build to <dir>/<publish path>",
        origin=origin_of("image", "destdir"),
        key="[image] destdir",
        hint="set destdir = <dir>/${publish:path}, or set path and leave destdir out",
    )


AWS_SECRET = "aws-credentials"
SSH_SECRET = "ssh-key"


def merged_option(section: str, key: str) -> tuple[str, str] | None:
    """(option, op) when `key` is an add/del key of a merged option of `section`."""
    for pattern, option in MERGED_OPTIONS:
        if not fnmatch.fnmatchcase(section, pattern):
            continue
        for op in ("add", "del"):
            # The reader's glob `<option>_add*`: `hooks_added` is an add key too.
            if key.startswith(f"{option}_{op}"):
                return option, op
    return None


def recipe_path(section: str, key: str) -> tuple[KeyPath, str]:
    """Where `[section] key` lives in the recipe, and its kind: str, bool, int, list."""
    if section in HOOK_SECTIONS and key == "hooks":
        return ("hooks", section), "list"
    if section == "build":
        return ("extra", "build", key), "str"
    if section in SECTION_MODELS:
        kind = field_kind(SECTION_MODELS[section], key)
        return ((section, key), kind) if kind else (("extra", section, key), "str")
    if section.startswith(REMOTE_PREFIX) and len(section) > len(REMOTE_PREFIX):
        name = section[len(REMOTE_PREFIX) :]
        kind = field_kind(model.FlatpakRemote, key)
        if kind:
            return ("flatpak", "remotes", name, key), kind
        return ("extra", section, key), "str"
    if section == "publish":
        if key == "path":
            return ("publish", "path"), "str"
        if key in ("s3_bucket", "s3_region"):
            return ("publish", "targets"), "targets"
        return ("extra", "publish", key), "str"
    if section.startswith(TARGET_PREFIX) and len(section) > len(TARGET_PREFIX):
        return ("publish", "targets"), "targets"
    return (*free_section(section), key), "str"
