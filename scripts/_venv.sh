# Sourced by scripts/test and scripts/demo: create .venv once and install the project into it.
# The install is skipped while pyproject.toml is unchanged since the last one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BATCHWIRE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${1:-}"
# a venv left half-made (Debian's python3 without python3-venv leaves one without pip) or
# made by an older Python is made again
if ! "$VENV/bin/python" -c 'import pip, sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "error: batchwire needs Python 3.11 or newer ($PYTHON is older; set PYTHON=...)" >&2
        exit 1
    fi
    echo "==> creating virtualenv $VENV"
    if ! "$PYTHON" -m venv --clear "$VENV"; then
        echo "error: $PYTHON -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    fi
fi
stamp="$VENV/.batchwire-installed$EXTRAS"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "==> installing batchwire${EXTRAS:+[$EXTRAS]} into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}"
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
