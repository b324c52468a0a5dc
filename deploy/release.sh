#!/bin/sh
# ivrdesk's release step: migrate the database to the newest schema, then become gunicorn.
#
#   deploy/release.sh                 migrate, then serve (extra arguments go to gunicorn)
#   deploy/release.sh dispatch        run another `ivrdesk` command instead (no migration),
#                                     e.g. the dispatcher in a container
#
# IVRDESK_MIGRATE=0 skips the migration (hosts other than the one that migrates, when
# several hosts share one PostgreSQL). Configuration comes from the IVR_* variables.
set -eu
cd "$(dirname "$0")/.."

# A virtualenv beside the code (a Debian host) or the one on PATH (the container).
if [ -x .venv/bin/gunicorn ]; then
  BIN=.venv/bin/
else
  BIN=
fi

# Only gunicorn's workers write Prometheus samples; a command must not add its own.
case "${1:-}" in
  "" | -*)
    if [ "${IVRDESK_MIGRATE:-1}" != "0" ]; then
      env -u PROMETHEUS_MULTIPROC_DIR "${BIN}ivrdesk" db upgrade
    fi
    exec "${BIN}gunicorn" -c deploy/gunicorn.conf.py wsgi:app "$@"
    ;;
  *)
    exec env -u PROMETHEUS_MULTIPROC_DIR "${BIN}ivrdesk" "$@"
    ;;
esac
