"""The recipe format: what a user may write, and its types.

Every section is a strict pydantic model so that a typo in a known section is
an error (with a "did you mean") and `iso: maybe` is not silently a string.
Sections eib does not know are kept as free-form key/values, because legacy
hooks read arbitrary options through the `EIB_*` environment.

List fields accept either a plain list (the exact final list) or
`{add: [...], del: [...]}`; the loader resolves both forms before validation,
so the models only ever see plain lists.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

HookName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ARCHES = ("amd64", "arm64", "i386")
HOOK_GROUPS = ("content", "image", "manifest", "publish", "error")
Scalar = str | int | float | bool | None


# Start-up cost (`eib plan` runs hundreds of times a day): annotations here are
# real objects, not strings, so pydantic need not compile and evaluate each
# one; and the sections are built when defined (no defer_build) so that
# Recipe and Plan reuse their validators instead of generating each one again.


class Section(BaseModel):
    """Base of every known section: strict, closed, documented."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# Only the JSON Schema validates a bare variant; Build, its subclass, is built.
class Variant(Section, defer_build=True):
    """The attributes that pick one image out of a recipe's many."""

    product: str = Field("eoscustom", description="Product name, e.g. eos")
    branch: str = Field("master", description="OS branch, e.g. master or eos6.0")
    arch: Literal["amd64", "arm64", "i386"] | None = Field(
        None, description="Target architecture; default: the host's"
    )
    platform: str | None = Field(None, description="Sub-architecture; default: the arch")
    personality: str = Field("base", description="Image personality, e.g. base, en, pt_BR")


class BuildSwitches(Section, defer_build=True):
    """Build switches that pick no variant: given on the command line, not in files."""

    use_production_ostree: bool = Field(
        False,
        description="Pull the OS from ostree.prod_url instead of ostree.url "
        "(--use-production-ostree, or --set build.use_production_ostree=true); "
        "the deployed OS still follows deploy_url",
    )


class BuildSettings(Section, defer_build=True):
    """How the build runs, not what it makes: the only keys a recipe file may set under `build:`."""

    buildroot: bool | Literal["auto"] | None = Field(
        None,
        description="Run host-side hooks inside the OS tree being built (bubblewrap), so they "
        "use its tools: true (the tree must have /bin/bash), false, or auto (on when the OS "
        "tree has /bin/bash). Unset: a recipe's `buildroot: {enable}` section ([buildroot] "
        "enable) if any, else auto for a legacy INI tree and false for a YAML recipe",
    )
    buildroot_mounts: list[str] = Field(
        [],
        description="More host paths the buildroot sees at the same path ([buildroot] mounts)",
    )


class Build(Variant, BuildSwitches, BuildSettings, defer_build=False):
    """The resolved `build` section: the variant plus derived facts."""

    arch: Literal["amd64", "arm64", "i386"] = "amd64"
    platform: str = "amd64"
    series: str = Field("master", description="The branch with its last '.'-part removed")
    build_version: str = Field("", description="UTC build time, %y%m%d-%H%M%S")
    srcdir: str = ""
    localdir: str = ""
    localdatadir: str = ""
    sysconfdir: str = "/etc/eos-image-builder"


class Ostree(Section):
    """Where the OS tree comes from and how it is deployed."""

    url: str = Field("", description="Pull URL of the OSTree repository")
    prod_url: str = Field(
        "", description="Pull URL used instead when build.use_production_ostree is true"
    )
    deploy_url: str = Field("", description="URL the deployed OS pulls updates from")
    ref: str = Field("", description="Ref to pull")
    ref_deploy: str = Field("", description="Ref the deployed OS follows; default: ref")
    remote: str = Field("eos", description="Remote name inside the image")
    os: str = Field("eos", description="OS name (the stateroot)")
    gpg_keys: list[str] = Field(
        [], description="Public keys (local files or inline armoured text) that sign commits"
    )
    gpg_verify: bool = Field(
        True, description="Verify commits; false (unsigned test repos only) warns in plan and log"
    )
    commit: str = Field("", description="Pin: the exact commit to pull (see `eib lock`)")
    p2p: bool = Field(False, description="Set a collection id on the deploy remote")
    collection_id: str = Field("", description="Collection id of the deploy remote (p2p)")
    kernel_args: list[str] = Field([], description="Extra kernel arguments")
    pull_retries: int = Field(3, ge=0, description="Retries of a failed pull, with backoff")
    prune_keep: int = Field(3, ge=1, description="Commits of the ref kept in the cache repo")


class Image(Section):
    """How the deployed tree becomes disk images and what is configured in it."""

    compression: Literal["gz", "xz", "zstd"] = Field("gz", description="Compressor of the image")
    partition_table: Literal["gpt", "dos"] = Field("gpt", description="Partition table type")
    rootfs_resize: bool = Field(True, description="Mark the root to grow on first boot")
    boot_zip: bool = Field(False, description="Also write boot.zip (EFI tree + GRUB)")
    iso: bool = Field(False, description="Also write a hybrid ISO image")
    qcow2: bool = Field(False, description="Also write a compressed qcow2 image")
    qcow2_extra: int = Field(0, ge=0, description="Bytes added to the qcow2 virtual size")
    vm_image: bool = Field(
        False, description="Also write <outversion>.ovf.zip, a VirtualBox/VMware VM (amd64)"
    )
    sdboot: bool = Field(False, description="systemd-boot layout: a 500 MiB ESP")
    max_size: int | None = Field(None, ge=0, description="Largest allowed raw image, in bytes")
    extra_space: int | None = Field(
        None, ge=0, description="Free bytes in the root; default max(5 %, 1 GiB)"
    )
    signing_keyid: str = Field("", description="GPG key that signs images; empty: unsigned")
    gpg_homedir: str = Field("", description="Keyring dir holding the signing key")
    language: str = Field("", description="Default locale, e.g. pt_BR.utf8")
    timezone: str = Field("", description="Default time zone, e.g. Europe/Lisbon")
    hostname: str = Field("", description="Host name of the installed OS")
    xkb_layout: str = Field("", description="Keyboard layout, e.g. br")
    xkb_variant: str = Field("", description="Keyboard layout variant")
    settings: list[str] = Field([], description="GSettings override files (60-dconf-prepare)")
    settings_locks: list[str] = Field([], description="dconf lock files (60-dconf-prepare)")
    icon_grid: list[str] = Field([], description="Desktop icon grid JSON files (63-icon-grid)")
    # Options of the built-in hooks (docs/builtin-hooks.md); files are host paths.
    branding_desktop_background: str = Field(
        "", description="Desktop background file (50-branding-background)"
    )
    branding_fbe_config: str = Field(
        "", description="gnome-initial-setup vendor.conf (50-branding-fbe)"
    )
    metrics_server_url: str = Field("", description="Metrics server URL (50-metrics-urls)")
    activation_server_url: str = Field("", description="Activation server URL (50-metrics-urls)")
    chromium_policies: bool = Field(False, description="Install browser policies "
                                    "(60-chromium-policies)")
    chromium_policies_managed: str = Field(
        "", description="Managed browser policy file (60-chromium-policies)"
    )
    chromium_policies_recommended: str = Field(
        "", description="Recommended browser policy file (60-chromium-policies)"
    )
    initramfs_plymouth_watermark: str = Field(
        "", description="Boot splash watermark image (50-initramfs-append)"
    )


class FlatpakRemote(Section):
    """One Flatpak remote and what to install from it."""

    url: str = Field("", description="URL to install from")
    deploy_url: str = Field("", description="URL the installed OS updates from; default: url")
    repo_file: str = Field(
        "", description=".flatpakrepo file or https URL; recipe values win"
    )
    title: str = Field("", description="Title shown to users")
    default_branch: str = Field("", description="Branch of refs written without one")
    prio: int | None = Field(None, description="Remote priority")
    noenumerate: bool = Field(False, description="Hide the remote from app stores")
    enable: bool = Field(True, description="Install from this remote")
    gpg_key: str = Field("", description="Public key of the remote: a local file or https URL")
    gpg_verify: bool = Field(
        True, description="Verify the remote; false (unsigned test repos only) warns"
    )
    collection_id: str = Field("", description="Collection id (p2p)")
    apps: list[str] = Field([], description="Apps: ID or ID//BRANCH")
    runtimes: list[str] = Field([], description="Runtimes installed explicitly")
    exclude: list[str] = Field(
        [], description="Refs that must not be installed, even as dependencies"
    )
    allow_extra_data: list[str] = Field([], description="Refs allowed to download extra data")
    commits: dict[str, str] = Field({}, description="Pins, ref → commit (written by `eib lock`)")


class Flatpak(Section):
    """Apps installed into the OS's system installation."""

    enable: bool = Field(True, description="Install Flatpaks at all")
    arch: str = Field("", description="Flatpak arch; default from the build arch")
    locales: list[str] = Field([], description="Locales of locale extensions")
    set_extra_languages: bool = Field(
        False, description="Write the locales as xa.extra-languages too"
    )
    remotes: dict[str, FlatpakRemote] = Field({}, description="By name")


class Hooks(Section):
    """The hooks to run, one list per group, run in lexical order."""

    content: list[HookName] = Field([], description="Before the deployment")
    image: list[HookName] = Field([], description="On the deployed tree")
    manifest: list[HookName] = Field([], description="Manifest fragments")
    publish: list[HookName] = Field([], description="After publishing")
    error: list[HookName] = Field([], description="When a build fails")
    pass_env: list[EnvName] = Field(
        [],
        description="Variables of eib's own environment that hooks also get; hooks see "
        "only EIB_*, PATH, LANG, TERM, HOME, SHELL and SOURCE_DATE_EPOCH otherwise",
    )


def _relative_build_path(value: str) -> str:
    """A publish path must name a directory below the target, never the target itself."""
    parts = [p for p in value.strip().split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(
            "must name a directory below the target: not empty, '.', or containing '..'"
        )
    return value


def _not_an_option(value: str) -> str:
    """ssh and rsync would read a host or user starting with '-' as an option."""
    if value.startswith("-") or any(c.isspace() for c in value):
        raise ValueError("must not start with '-' or contain white space")
    return value


BuildPath = Annotated[str, AfterValidator(_relative_build_path)]
SshWord = Annotated[str, AfterValidator(_not_an_option)]


class S3Target(Section):
    """Publish to an S3 bucket (or an S3-compatible server) through boto3."""

    kind: Literal["s3"]
    bucket: str = Field(min_length=1, description="Bucket name")
    region: str = Field("", description="Region; default: boto3's configuration")
    endpoint_url: str = Field("", description="S3-compatible server URL; default: AWS")
    path: str = Field("", description="Key prefix above each build's path")
    credentials_secret: str = Field("", description="Name of a secret holding credentials")

    def describe(self) -> str:
        """A short, secret-free name for messages and plans."""
        return f"s3://{self.bucket}/{self.path}".rstrip("/")


class RsyncTarget(Section):
    """Publish over ssh with rsync, renamed into place when complete."""

    kind: Literal["rsync"]
    host: SshWord = Field(min_length=1, description="Host to connect to")
    user: Annotated[str, AfterValidator(lambda v: _not_an_option(v) if v else v)] = Field(
        "", description="Login; default: ssh's"
    )
    port: int | None = Field(None, ge=1, le=65535, description="ssh port")
    path: str = Field("", description="Directory on the host above each build's path")
    identity_secret: str = Field("", description="Name of a secret holding an ssh key file")

    def describe(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.path}"


class LocalTarget(Section):
    """Publish into a directory of this machine, renamed into place when complete."""

    kind: Literal["local"]
    path: str = Field(pattern=r"^(/|<secret:)", description="Absolute directory")

    def describe(self) -> str:
        return self.path


PublishTarget = Annotated[S3Target | RsyncTarget | LocalTarget, Field(discriminator="kind")]
TARGET_MODELS: dict[str, type[Section]] = {
    "s3": S3Target, "rsync": RsyncTarget, "local": LocalTarget,
}


class Publish(Section):
    """Where builds go."""

    path: BuildPath = Field(
        "nightly/${build:product}-${build:arch}-${build:platform}/${build:branch}/"
        "${build:personality}/${build:build_version}",
        description="Key prefix / directory of one build below each target",
    )
    targets: list[PublishTarget] = Field([])


class Secret(Section):
    """A private value: used by the build, never shown."""

    value: str | None = None
    file: str | None = None
    key: str | None = Field(
        None,
        description="With file: the value at this key: section.option of an INI file "
        "(a legacy private.ini), or a dotted path in a YAML file",
    )
    env: str | None = None


class Demo(Section):
    """Serve the embedded demo OS and apps on 127.0.0.1 for this build."""

    serve: bool = False
    port: int = Field(8690, ge=1, le=65535)
    # Which demo OS to serve: the tiny busybox one, or the Debian 12 one with
    # systemd and Flatpak (`eib demo-os --os debian`).
    os: Literal["busybox", "debian"] = "busybox"


class Recipe(BaseModel):
    """A whole recipe after layering: what the compiler turns into a plan."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    # Lambdas, not the classes: pydantic inspects a factory's signature, and a
    # model class's signature is generated on first use (~0.3 ms each).
    eib: Literal[1] = 1
    build: Build = Field(default_factory=lambda: Build())
    ostree: Ostree = Field(default_factory=lambda: Ostree())
    image: Image = Field(default_factory=lambda: Image())
    flatpak: Flatpak = Field(default_factory=lambda: Flatpak())
    hooks: Hooks = Field(default_factory=lambda: Hooks())
    publish: Publish = Field(default_factory=lambda: Publish())
    secrets: dict[str, Secret] = Field({})
    demo: Demo = Field(default_factory=lambda: Demo())
    extra: dict[str, dict[str, Any]] = Field(
        {}, description="Sections eib does not know; exported to hooks"
    )

    @model_validator(mode="before")
    @classmethod
    def _production_pull_url(cls, data: Any) -> Any:
        """`build.use_production_ostree` swaps the pull URL, as the legacy switch did.

        Only the pull changes: an image without its own `deploy_url` keeps
        following the development `url`, because the legacy switch never
        changed what the deployed OS tracks.
        """
        if not isinstance(data, dict):
            return data
        build, ostree = data.get("build"), data.get("ostree")
        if not isinstance(build, dict) or build.get("use_production_ostree") is not True:
            return data
        ostree = ostree if isinstance(ostree, dict) else {}
        if not ostree.get("prod_url"):
            raise ValueError(
                "build.use_production_ostree is true but ostree.prod_url is not set "
                "(a legacy tree sets it as [ostree] prod_pull_url)"
            )
        swapped = {**ostree, "url": ostree["prod_url"]}
        swapped.setdefault("deploy_url", ostree.get("url", ""))
        if not swapped["deploy_url"]:
            swapped["deploy_url"] = ostree.get("url", "")
        return {**data, "ostree": swapped}


KNOWN_SECTIONS = tuple(
    name for name in Recipe.model_fields if name not in ("eib", "extra", "build")
)
