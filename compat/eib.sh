#!/bin/bash
# eib shell library: the helpers legacy hooks call.
#
# Hooks that are not executable are run through bash after this file is
# sourced, exactly as the INI-driven builder did, so existing hook scripts
# keep working unchanged. Only the EIB_* environment is assumed:
# EIB_OUTDIR, EIB_OUTVERSION, EIB_TMPDIR, EIB_SYSCONFDIR and the config
# options exported as EIB_<SECTION>_<OPTION>.
shopt -s nullglob
shopt -s extglob

# ERR traps follow into shell functions.
set -E

# Mount points eib_mount made in this shell (also recorded in a file, for later hooks).
declare -ga EIB_MOUNTS

# xtrace shows the script and time: "+ 50-hostname 10:13:40: command".
export PS4='+ ${BASH_SOURCE[0]##*/} \t: '

# Full path of an output file: eib_outfile img.gz ->
# ${EIB_OUTDIR}/${EIB_OUTVERSION}.img.gz
eib_outfile() {
  local suffix=${1:?No suffix supplied to ${FUNCNAME}}
  echo "${EIB_OUTDIR:?EIB_OUTDIR is not set}/${EIB_OUTVERSION:?EIB_OUTVERSION is not set}.${suffix}"
}

# Retry a command up to EIB_RETRY_ATTEMPTS (default 3) times, sleeping
# EIB_RETRY_INTERVAL (default 1) seconds between attempts, for flaky
# network operations. Returns the last exit status.
retry() {
  local -i attempts=${EIB_RETRY_ATTEMPTS:-3}
  local interval=${EIB_RETRY_INTERVAL:-1}
  local -i n=1 status=0
  [ $# -gt 0 ] || { echo "No command supplied to ${FUNCNAME}" >&2; return 1; }
  while true; do
    "$@" && return 0
    status=$?
    if (( n >= attempts )); then
      echo "Command failed ${n} times, giving up: $*" >&2
      return ${status}
    fi
    echo "Command failed (attempt ${n} of ${attempts}), retrying: $*" >&2
    (( n++ ))
    sleep "${interval}"
  done
}

# Retry CMD at most EIB_RETRY_ATTEMPTS (default 10) times in total, sleeping
# EIB_RETRY_INTERVAL (default 1) seconds between attempts; the legacy
# builder's name and messages (`retry` above is eib's shorter form).
eib_retry() {
  local -i max=${EIB_RETRY_ATTEMPTS:-10} n=1
  local interval=${EIB_RETRY_INTERVAL:-1}
  if [ $# -eq 0 ]; then
    echo "error: No command supplied to ${FUNCNAME}" >&2
    return 1
  fi
  while true; do
    "$@" && return 0
    if (( n >= max )); then
      echo "$* failed ${n} times; giving up" >&2
      return 1
    fi
    echo "$* failed; retrying..." >&2
    (( n++ ))
    sleep "${interval}"
  done
}

# Wait for udev to settle; without a udev (a container) there is nothing to wait for.
eib_udevadm_settle() {
  if [ ! -e /run/udev/control ]; then
    echo "udev not running; not waiting for it to settle" >&2
    return 0
  fi
  SYSTEMD_IGNORE_CHROOT=1 eib_retry udevadm settle || true
  return 0
}

# Add (scan) or remove the partition devices of a loop device.
eib_partx_scan() {
  local dev=${1:?No device supplied to ${FUNCNAME}}
  eib_udevadm_settle
  eib_retry partx -a -v "${dev}"
}
eib_partx_delete() {
  local dev=${1:?No device supplied to ${FUNCNAME}}
  eib_udevadm_settle
  eib_retry partx -d -v "${dev}"
}

# Detach a loop device, retried while udev still holds it.
eib_delete_loop() {
  local dev=${1:?No device supplied to ${FUNCNAME}}
  eib_udevadm_settle
  eib_retry losetup -d "${dev}"
}

# Mark DIR with the image version (xattr user.eos-image-version).
eib_write_version_xattr() {
  local dir=${1:?No directory supplied to ${FUNCNAME}}
  if command -v attr > /dev/null; then
    attr -s eos-image-version -V "${EIB_OUTVERSION}" "${dir}"
  else
    setfattr -n user.eos-image-version -v "${EIB_OUTVERSION}" "${dir}"
  fi
}

# Fix the SPL checksum of DISK with the deployed OS's own tool, when it has one.
eib_fix_boot_checksum() {
  local disk=${1:?No disk supplied to ${FUNCNAME}}
  local deploy=${2:?No deployment supplied to ${FUNCNAME}}
  if [ -x "${deploy}/usr/sbin/amlogic-fix-spl-checksum" ]; then
    "${deploy}/usr/sbin/amlogic-fix-spl-checksum" "${disk}"
  fi
  return 0
}

# Copy the ref SRC to DEST in the repo REPO (refs/heads).
ostree_write_refs() {
  local repo=${1:?No repo supplied to ${FUNCNAME}}
  local src=${2:?No source ref supplied to ${FUNCNAME}}
  local dest=${3:?No destination ref supplied to ${FUNCNAME}}
  local dest_dir=${dest%/*}
  [ "${dest_dir}" = "${dest}" ] && dest_dir=
  mkdir -p -- "${repo}/refs/heads/${dest_dir}"
  cp -- "${repo}/refs/heads/${src}" "${repo}/refs/heads/${dest}"
}

# Compress IN into OUT with EIB_IMAGE_COMPRESSION (xz, gz; eib also knows zstd).
eib_compress_image() {
  local in=${1:?No input supplied to ${FUNCNAME}}
  local out=${2:?No output supplied to ${FUNCNAME}}
  case "${EIB_IMAGE_COMPRESSION}" in
    xz) xz -vv -M1G -T0 -4 -c "${in}" > "${out}" ;;
    gz) pigz --no-name -c "${in}" > "${out}" ;;
    zstd) zstd -q -T0 -c "${in}" > "${out}" ;;
    *)
      echo "Unrecognized image compression ${EIB_IMAGE_COMPRESSION}" >&2
      return 1
      ;;
  esac
}

# Run CMD inside the OS tree ROOT with a clean environment (PATH, SHELL, LANG,
# TERM, PS4 and EIB_*), as the legacy eib-chroot did; shadows chroot(8).
chroot() {
  local root=${1:?No root supplied to ${FUNCNAME}}
  shift
  if [ -x "${EIB_HELPERSDIR:-}/eib-chroot" ]; then
    "${EIB_HELPERSDIR}/eib-chroot" "${root}" "$@"
    return
  fi
  local name
  local -a keep=()
  for name in PATH SHELL LANG SHLVL TERM PS4 $(compgen -e EIB_); do
    [ -n "${!name+x}" ] && keep+=("${name}=${!name}")
  done
  (cd / && env -i "${keep[@]}" chroot "${root}" "$@")
}

# Run the hooks of GROUP listed in EIB_<GROUP>_HOOKS, in C sort order, from
# the localdir's hooks/GROUP, else ${EIB_HOOKSDIR:-$EIB_SRCDIR/hooks}/GROUP.
# `.chroot` hooks run inside ROOT, or are skipped without one.
run_hooks() {
  local group=${1:?No hook group supplied to ${FUNCNAME}}
  local root=${2:-}
  local var="EIB_${group^^}_HOOKS" name hook dir found
  local -a names dirs
  echo "Running ${group} hooks"
  export EIB_HOOK_GROUP=${group}
  dirs=()
  [ -n "${EIB_LOCALDIR:-}" ] && dirs+=("${EIB_LOCALDIR}/hooks/${group}")
  dirs+=("${EIB_HOOKSDIR:-${EIB_SRCDIR}/hooks}/${group}")
  mapfile -t names < <(for name in ${!var:-}; do echo "${name}"; done | LC_ALL=C.UTF-8 sort)
  for name in "${names[@]}"; do
    [ -n "${name}" ] || continue
    found=
    for dir in "${dirs[@]}"; do
      if [ -f "${dir}/${name}" ]; then found="${dir}/${name}"; break; fi
    done
    if [ -z "${found}" ]; then
      echo "Missing hook ${name} not found in ${dirs[*]}" >&2
      return 1
    fi
    hook=${found}
    if [[ "${name}" == *.chroot ]]; then
      if [ -z "${root}" ]; then
        echo "Skipping hook, no chroot available: ${name}"
        continue
      fi
      echo "Run hook in chroot: ${name}"
      cp -- "${hook}" "${root}/tmp/${name}"
      if [ -x "${hook}" ]; then
        chroot "${root}" "/tmp/${name}" || return
      else
        chroot "${root}" bash -ex "/tmp/${name}" || return
      fi
      rm -f -- "${root}/tmp/${name}"
    else
      echo "Run hook: ${name}"
      if [ -x "${hook}" ]; then
        "${hook}" || return
      else
        ( . "${hook}" ) || return
      fi
    fi
  done
}

# Delete and recreate a directory.
recreate_dir() {
  local dir=${1:?No directory supplied to ${FUNCNAME}}
  rm -rf -- "${dir}"
  mkdir -p -- "${dir}"
}

# The file that records mount points, so an unmount-all in any later hook
# or the error stage can clean up what earlier hooks mounted.
eib_mounts_file() {
  echo "${EIB_TMPDIR:?EIB_TMPDIR is not set}/mounts"
}

# Mount a filesystem and record its target (the last argument).
eib_mount() {
  local target file
  if [ $# -lt 2 ]; then
    echo "At least 2 arguments needed to ${FUNCNAME}" >&2
    return 1
  fi
  target=${!#}
  mkdir -p -- "${target}"
  mount "$@" || return
  target=$(readlink -f -- "${target}")
  EIB_MOUNTS+=("${target}")
  file=$(eib_mounts_file)
  mkdir -p -- "$(dirname -- "${file}")"
  echo "${target}" >> "${file}"
}

# Unmount one tracked mount point (every entry equal to TARGET) and forget it.
eib_umount() {
  local target=${1:?No mount target supplied to ${FUNCNAME}}
  local file entry found=false status=0
  local -a targets kept=()
  file=$(eib_mounts_file)
  target=$(readlink -f -- "${target}")
  targets=()
  [ -f "${file}" ] && mapfile -t targets < "${file}"
  for entry in "${targets[@]}"; do
    if [ "${entry}" = "${target}" ]; then
      found=true
      umount -- "${entry}" || status=1
    else
      kept+=("${entry}")
    fi
  done
  if ! ${found}; then
    echo "Mount point ${target} not tracked in: ${targets[*]}" >&2
    return 1
  fi
  if [ ${#kept[@]} -gt 0 ]; then
    printf '%s\n' "${kept[@]}" > "${file}"
  else
    rm -f -- "${file}"
  fi
  EIB_MOUNTS=("${kept[@]}")
  return ${status}
}

# Unmount every recorded mount point, newest first so submounts go before
# their parents. Mounts already gone are skipped; the record is cleared.
eib_umount_all() {
  local file target status=0
  local -i n
  local -a targets
  file=$(eib_mounts_file)
  [ -f "${file}" ] || return 0
  mapfile -t targets < "${file}"
  for (( n = ${#targets[@]} - 1; n >= 0; n-- )); do
    target=${targets[n]}
    [ -n "${target}" ] || continue
    if mountpoint -q -- "${target}"; then
      umount -- "${target}" || status=1
    fi
  done
  if [ ${status} -eq 0 ]; then
    rm -f -- "${file}"
    EIB_MOUNTS=()
  fi
  return ${status}
}

# Create a detached ASCII-armoured signature FILE.asc (or OUTFILE) when a
# signing key is configured; without one this does nothing.
sign_file() {
  local file=${1:?No file supplied to ${FUNCNAME}}
  local outfile=${2:-${file}.asc}
  local homedir=${EIB_IMAGE_GPG_HOMEDIR:-${EIB_SYSCONFDIR}/gnupg}
  [ -n "${EIB_IMAGE_SIGNING_KEYID}" ] || return 0
  gpg --batch --yes --homedir "${homedir}" \
      --armour \
      --local-user "${EIB_IMAGE_SIGNING_KEYID}" \
      --detach-sign \
      --output "${outfile}" \
      "${file}"
}

# Write FILE.sha256 (or OUTFILE) in sha256sum format, naming the file TARGET
# (default: its base name) so the checksum can be verified next to it after
# download.
checksum_file() {
  local file=${1:?No file supplied to ${FUNCNAME}}
  local outfile=${2:-${file}.sha256}
  local target=${3:-$(basename -- "${file}")}
  local sum
  sum=$(sha256sum < "${file}") || return
  echo "${sum%% *}  ${target}" > "${outfile}"
}

# Turn a locale like br_FR.iso885915@euro into an ISO 639-1 tag: br-FR.
locale_to_iso_639_1() {
  local code=${1%%@*}
  code=${code%%.*}
  echo "${code/_/-}"
}

# Host path of PATH inside the OS tree ROOT, following symlinks as the OS
# itself would: an absolute link (/etc/hostname -> /root/x) and `..` stay
# inside ROOT instead of leading onto the build host's files.
#   f=$(eib_root_path "${OSTREE_DEPLOYMENT}" /etc/hostname) && echo x > "$f"
eib_root_path() {
  local root="${1:?No root supplied to ${FUNCNAME}}" todo="${2:?No path supplied to ${FUNCNAME}}"
  local done="" part target
  local -i links=0
  root="${root%/}"
  while [[ -n "${todo}" ]]; do
    while [[ "${todo}" == /* ]]; do todo="${todo#/}"; done
    [[ -n "${todo}" ]] || break
    part="${todo%%/*}"
    if [[ "${todo}" == */* ]]; then todo="${todo#*/}"; else todo=""; fi
    case "${part}" in
      .) continue ;;
      ..) done="${done%/*}"; continue ;;
    esac
    if [[ -L "${root}${done}/${part}" ]]; then
      links+=1
      if (( links > 40 )); then
        echo "${FUNCNAME}: too many levels of symbolic links in $2" >&2
        return 1
      fi
      target="$(readlink "${root}${done}/${part}")"
      [[ "${target}" != /* ]] || done=""
      todo="${target}/${todo}"
    else
      done="${done}/${part}"
    fi
  done
  echo "${root}${done}"
}

# Numeric id of a user or group of the deployed OS (its lib/passwd, lib/group).
ostree_uid() {
  grep "^${1}:" "${OSTREE_DEPLOYMENT}"/lib/passwd | cut -d : -f 3
}
ostree_gid() {
  grep "^${1}:" "${OSTREE_DEPLOYMENT}"/lib/group | cut -d : -f 3
}

true
