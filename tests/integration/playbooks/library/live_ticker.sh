#!/bin/sh
# A test module in the old style (arguments as shell assignments in the file $1) whose process writes
# its output while it runs: `count` lines "<prefix> <n>", one every `interval` seconds, on `stream`
# (stdout or stderr), then `fill` bytes of 99-character lines there, then it waits `hold` seconds.
# Its stdout and stderr are the job's side files, read by async_status mode=output and by follow.
. "$1"
count=${count:-20}
interval=${interval:-1}
stream=${stream:-stdout}
fill=${fill:-0}
hold=${hold:-0}
prefix=${prefix:-tick}
say() {
    if [ "$stream" = stderr ]; then printf '%s\n' "$1" >&2; else printf '%s\n' "$1"; fi
}
n=1
while [ "$n" -le "$count" ]; do
    say "$prefix $n"
    n=$((n + 1))
    if [ "$n" -le "$count" ]; then sleep "$interval"; fi
done
if [ "$fill" -gt 0 ]; then
    if [ "$stream" = stderr ]; then
        { head -c "$fill" /dev/zero | tr '\0' 'x' | fold -w 99; echo; } >&2
    else
        head -c "$fill" /dev/zero | tr '\0' 'x' | fold -w 99
        echo
    fi
fi
sleep "$hold"
printf '{"changed": true, "lines": %s, "msg": "printed %s lines"}\n' "$count" "$count"
