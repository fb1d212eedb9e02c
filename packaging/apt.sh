# Sourced by the build, test and benchmark scripts: installing Debian
# packages only when they are missing.
# shellcheck shell=bash

# Runs a command as root: directly, or through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the packages among the arguments that are not installed yet.
apt_install() {
    local missing=()
    for p in "$@"; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"ok installed" ]] || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing: ${missing[*]}"
        # Once per run: the scripts that source this call each other.
        if [ -z "${FAKEUPS_APT_UPDATED:-}" ]; then
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
            export FAKEUPS_APT_UPDATED=1
        fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}
