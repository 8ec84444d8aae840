#!/bin/sh
# A test module in the old style, small enough that a large argument makes the launch request
# reach the command-line limit: it reports the size of its arguments file.
printf '{"changed": false, "args_bytes": %s}\n' "$(wc -c < "$1")"
