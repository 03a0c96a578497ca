#!/bin/sh
# Builder-stage helper (runs inside the image build, never in a runtime stage).
#   venv-install.sh deps VENV EXTRAS   create VENV; install the dependencies of .[EXTRAS]
#                                      (run before the code is copied: a cached layer)
#   venv-install.sh project VENV       install the project itself (no dependencies), drop pip
# Versions are held by constraints.txt. PIP_CERT (a CA bundle mounted read-only for the
# build) is used only when set and non-empty; nothing of it is written into the venv.
set -eu
mode="$1"
venv="$2"
[ -n "${PIP_CERT:-}" ] || unset PIP_CERT
case "$mode" in
  deps)
    python3 -m venv "$venv"
    [ -e README.md ] || : >README.md   # pyproject names it; the real one comes with the code
    # Without the packages, setuptools builds an empty distribution: only the deps land.
    "$venv/bin/pip" install --constraint constraints.txt ".[$3]"
    ;;
  project)
    "$venv/bin/pip" install --no-deps --force-reinstall --constraint constraints.txt .
    "$venv/bin/pip" check
    # Test suites shipped inside wheels are never imported at run time (~60 MB).
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    for pkg in numpy pandas scipy pyarrow sklearn; do
      if [ -d "$site/$pkg" ]; then find "$site/$pkg" -depth -type d -name tests -exec rm -rf {} +; fi
    done
    rm -rf "$site/pyarrow/include" "$site/pyarrow/src"
    # pip is not needed at run time, and an image that cannot pip-install is easier to trust.
    "$venv/bin/pip" uninstall --yes --quiet pip
    ;;
  *) echo "usage: $0 deps VENV EXTRAS | project VENV" >&2; exit 2 ;;
esac
