# Debian packages a build step needs: `source hack/lib/debs.sh; ensure_debs PKG...`.
# Installs the missing ones with apt-get when running as root; otherwise fails naming them.
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
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  ) 9>/tmp/llmstage-apt.lock
}
