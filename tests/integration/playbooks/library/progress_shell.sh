#!/bin/sh
# A test module in the old style: the job's process is this shell, which reports on its descriptor, as does its child.
echo '{"percent": 50, "msg": "the shell on its descriptor"}' >&"$LONGRUN_PROGRESS_FD"
sh -c 'echo "{\"percent\": 60, \"msg\": \"its child too\"}" >&"$LONGRUN_PROGRESS_FD"'
echo '{"percent": 99, "msg": "cut' >&"$LONGRUN_PROGRESS_FD"
printf '{"changed": false}\n'
