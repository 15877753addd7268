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
  mount "$@" || return
  file=$(eib_mounts_file)
  mkdir -p -- "$(dirname -- "${file}")"
  readlink -f -- "${target}" >> "${file}"
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

# Write FILE.sha256 (or OUTFILE) in sha256sum format, naming the file by its
# base name so the checksum can be verified next to it after download.
checksum_file() {
  local file=${1:?No file supplied to ${FUNCNAME}}
  local outfile=${2:-${file}.sha256}
  local dir name sum
  dir=$(dirname -- "${file}")
  name=$(basename -- "${file}")
  sum=$(cd -- "${dir}" && sha256sum -- "${name}") || return
  echo "${sum}" > "${outfile}"
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

# Numeric id of a user or group of the deployed OS.
ostree_uid() {
  grep "^${1}:" "${OSTREE_DEPLOYMENT}"/lib/passwd | cut -d : -f 3
}
ostree_gid() {
  grep "^${1}:" "${OSTREE_DEPLOYMENT}"/lib/group | cut -d : -f 3
}

true
