#!/bin/sh
# A test module in the old style (arguments as shell assignments in the file $1): it takes
# no Python, so that a small CI machine can start hundreds of jobs at once. It waits for a
# shared lock on the file `lock`, then reports `rc`, failing when it is not 0.
. "$1"
flock --shared "$lock" true
if [ "$rc" -eq 0 ]; then failed=false; else failed=true; fi
printf '{"changed": true, "rc": %s, "failed": %s, "stdout": "job-%s", "msg": "job %s exited %s"}\n' \
    "$rc" "$failed" "$index" "$index" "$rc"
