#!/bin/sh
# Entry point of the Consortium image.
#   no arguments, or only options: migrate the node's database, then run the node
#     (engine, web, API and peer links) on 0.0.0.0:$PORT, passing the options to runnode;
#   a command (e.g. `python manage.py devnet --prepare-only ...`): run it as given.
set -eu
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi
python manage.py migrate --noinput --verbosity 1
exec python manage.py runnode --bind "0.0.0.0:${PORT:-9001}" "$@"
