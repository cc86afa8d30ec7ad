# Debian packages a build step needs: `source hack/lib/debs.sh; ensure_debs PKG...`.
# Installs the missing ones with apt-get when running as root; otherwise fails naming them.
# Never starts a service a package ships (docker.io's dockerd, containerd): while apt runs, a
# policy-rc.d that refuses every start is in place unless the machine already has one, and it is
# removed again afterwards. A daemon started by a package's postinst would run in the host's
# network namespace and change its firewall; the steps that need one start their own.
ensure_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "error: missing Debian packages: ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
    return 1
  fi
  echo ">> installing Debian packages: ${missing[*]}"
  # Serialised: several builds may ask at once, and apt holds a lock.
  (
    flock 9
    policy=/usr/sbin/policy-rc.d ours=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\n# llmstage hack/lib/debs.sh: no service starts while it installs packages\nexit 101\n' >"$policy"
      chmod 755 "$policy"; ours=1
    fi
    rc=0
    apt-get update -qq >/dev/null || rc=$?
    if [ $rc = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    fi
    if [ $ours = 1 ]; then rm -f "$policy"; fi
    exit $rc
  ) 9>/tmp/llmstage-apt.lock
}
