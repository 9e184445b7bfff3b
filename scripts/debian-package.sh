# Sourced by the ensure-*.sh scripts: install a Debian package when we may.
#
# debian_install PACKAGE: as root with apt-get, install PACKAGE quietly
# (refreshing the package lists only if the first try fails); returns 1
# without trying when not root or without apt-get.
debian_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  echo "$1: installing the Debian package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$1" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq "$1" >/dev/null; }
}
