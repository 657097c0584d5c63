# Shared by ./start and ./test: find Python 3.11+, make .venv, install the project.
# Sourced, not run. On Debian/Ubuntu it installs python3-venv itself when it can (root or sudo).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else echo "postdesk: need root for: $*  (run it as root, then run me again)" >&2; exit 1
    fi
}

apt_install() {
    command -v apt-get >/dev/null || { echo "postdesk: please install: $*" >&2; exit 1; }
    if [ ! -f /tmp/.postdesk-apt-updated ]; then as_root apt-get update -qq && touch /tmp/.postdesk-apt-updated; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        PYTHON="$candidate"; break
    fi
done
[ -n "$PYTHON" ] || { echo "postdesk: Python 3.11 or newer is needed (Debian 12: apt-get install python3)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        echo "postdesk: installing python3-venv (Debian/Ubuntu ship venv separately)" >&2
        apt_install python3-venv "$("$PYTHON" -c 'import sys; print(f"python3.{sys.version_info.minor}-venv")')" || apt_install python3-venv
        "$PYTHON" -m venv .venv
    fi
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# python-magic (attachment type sniffing) loads libmagic at import: Debian/Ubuntu ship it as libmagic1.
"$PYTHON" -c 'import ctypes.util, sys; sys.exit(not ctypes.util.find_library("magic"))' || apt_install libmagic1
