#!/bin/sh
# Build Ferrite's user programs and run each one natively on this Linux
# machine.  They are ordinary static Linux programs, so they must pass here
# before the kernel can be expected to run them.  Exit status 0 iff all pass.
#
#   user/run-host-tests.sh            (from anywhere)
#   MAX_PROCS=50 user/run-host-tests.sh

set -u
cd "$(dirname "$0")" || exit 1
B=build
MAX_PROCS=${MAX_PROCS:-50}
failures=0
failed_names=
# failed NAME: counts a failure and remembers its name for the last line
# (a CI log may show only the tail).
failed() {
	failures=$((failures + 1))
	failed_names="$failed_names $1"
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Crashing test children must not write core files; the stack-overflow case
# expects the usual 8 MiB stack limit rather than an unlimited stack.
ulimit -c 0 2>/dev/null
ulimit -s 8192 2>/dev/null

make -s all || { echo "run-host-tests: build FAILED"; exit 1; }

# check NAME EXPECTED_STATUS PATTERN... -- COMMAND...
# Runs COMMAND (stdin from /dev/null, 60 s limit: on a loaded 2-core
# host the spinning hammers of smptests-long alone took 21 s), then checks
# the exit status and that every PATTERN (fixed string) appears in the
# output.
check() {
	name=$1 want=$2
	shift 2
	patterns=
	while [ "$1" != "--" ]; do
		patterns="$patterns$1
"
		shift
	done
	shift
	timeout 60 "$@" </dev/null >"$out" 2>&1
	got=$?
	ok=1
	why=
	if [ "$got" != "$want" ]; then
		ok=0
		why="exit status $got, expected $want"
	fi
	old_ifs=$IFS
	IFS='
'
	for p in $patterns; do
		if ! grep -qF -- "$p" "$out"; then
			ok=0
			why="${why:+$why; }output lacks \"$p\""
		fi
	done
	IFS=$old_ifs
	if [ $ok = 1 ]; then
		echo "run-host-tests: $name ... ok"
	else
		echo "run-host-tests: $name ... FAILED ($why)"
		sed 's/^/    | /' "$out"
		failed "$name"
	fi
}

# ELF header checks without binutils: e_type (offset 16) and PT_INTERP.
elf_type() { od -An -tu2 -j16 -N2 "$1" | tr -d ' '; }

check hello 0 "hello from ferrite user space" 'argv[1] = "one"' 'argv[2] = "two words"' \
	-- $B/hello one "two words"
check hello-pie 0 "hello from ferrite user space" 'argv[1] = "pie"' -- $B/hello-pie pie
if [ "$(elf_type $B/hello)" = 2 ] && [ "$(elf_type $B/hello-pie)" = 3 ] &&
	! grep -q "ld-musl" $B/hello-pie; then
	echo "run-host-tests: elf-types ... ok (hello is ET_EXEC, hello-pie is ET_DYN without interpreter)"
else
	echo "run-host-tests: elf-types ... FAILED (hello $(elf_type $B/hello), hello-pie $(elf_type $B/hello-pie))"
	failed elf-types
fi
check malloc-stress 0 "malloc-stress: ok" -- $B/malloc-stress
# filetests works in a directory of its own that it makes under $FILETESTS_DIR.
ft_dir=$(mktemp -d)
check filetests 0 "filetests: 22 passed, 0 failed" -- env FILETESTS_DIR="$ft_dir" $B/filetests
rmdir "$ft_dir" 2>/dev/null || { echo "run-host-tests: filetests left files in $ft_dir"; failed filetests-cleanup; }
# fstests2 likewise, under $FSTESTS2_DIR. It execs a copy of itself there,
# so not under /tmp, which a host may mount noexec: beside the programs.
fs2_dir=$(mktemp -d "$PWD/$B/fstests2-scratch.XXXXXX")
check fstests2 0 "fstests2: 11 passed, 0 failed" -- env FSTESTS2_DIR="$fs2_dir" $B/fstests2
rmdir "$fs2_dir" 2>/dev/null || { echo "run-host-tests: fstests2 left files in $fs2_dir"; failed fstests2-cleanup; }
check fstests2-bad-name 2 "fstests2: no case named no-such-case" -- env FSTESTS2_DIR="$PWD/$B" $B/fstests2 no-such-case
check cow-demo 0 "parent: 1024 pages still hold the parent's data after the child wrote 512" \
	"cow-demo: ok" -- $B/cow-demo
check usertests-list 0 "fork-oom" -- $B/usertests -l
check usertests 0 "usertests: 48 passed, 0 failed" -- $B/usertests --max-procs "$MAX_PROCS"
if grep -q FAILED "$out"; then
	echo "run-host-tests: usertests printed FAILED lines"
	failed usertests-lines
fi
check usertests-one 0 "usertests: 1 passed, 0 failed" -- $B/usertests null-read
# Only when named; needs vm.overcommit_memory=2, so here it says it skipped
# unless this machine is in mode 2 (tests/overcommit.rs runs it on Ferrite).
check usertests-strict 0 "usertests: overcommit-strict ... ok" "usertests: 1 passed, 0 failed" \
	-- $B/usertests overcommit-strict
check usertests-bad-name 2 "no case named" -- $B/usertests no-such-case
# The clocks, sleeps and the vDSO (tests/time.rs runs them on Ferrite).
check timetests 0 "timetests: vdso ... ok" "timetests: 8 passed, 0 failed" -- $B/timetests
check timetests-sleep-stats 0 "timetests: sleep 1000 us x 20: min " -- $B/timetests --sleep-stats 20
check timetests-bench 0 "timetests: bench clock_gettime-vdso " -- $B/timetests --bench 1000
check timetests-bad-name 2 "no case named" -- $B/timetests no-such-case
# Signals: handlers, masks, sigaltstack, SIGSEGV handlers, SIGCHLD, kill, EINTR.
check sigtests 0 "sigtests: 26 passed, 0 failed" -- $B/sigtests
check sigtests-one 0 "sigtests: demand-paging ... ok" "sigtests: 1 passed, 0 failed" \
	-- $B/sigtests demand-paging
check sigtests-bad-name 2 "no case named" -- $B/sigtests no-such-case
check sigtests-bench 0 "sigtests: bench: getpid " "(1000 each)" -- $B/sigtests --bench 1000
# Queued real-time signals, sigtimedwait, alarm/setitimer, process groups,
# ppoll/pselect6 masks.
check sigtests2 0 "sigtests2: 12 passed, 0 failed" -- $B/sigtests2
check sigtests2-one 0 "sigtests2: pgrp ... ok" "sigtests2: 1 passed, 0 failed" -- $B/sigtests2 pgrp
check sigtests2-bad-name 2 "no case named" -- $B/sigtests2 no-such-case
# POSIX threads (musl): create/join, mutexes, condvars, exit vs exit_group,
# tgkill, fork and execve from a thread, futex errors and shared futexes.
check pthreadtests 0 "pthreadtests: 21 passed, 0 failed" -- $B/pthreadtests
check pthreadtests-one 0 "pthreadtests: 1 passed, 0 failed" -- $B/pthreadtests mutex-counter
check smptests 0 "smptests: 7 passed, 0 failed" -- $B/smptests
check smptests-long 0 "smptests: 3 passed, 0 failed" -- $B/smptests -r 500 munmap-hammer mprotect-hammer fork-while-writing
# The process and machine calls C libraries make (rlimits, getrandom, ids,
# rseq, affinity, mincore, mlock...): each case Linux's answer.
check systests 0 "systests: rlimit-stack ... ok (SIGSEGV)" "systests: 16 passed, 0 failed" \
	-- $B/systests
check systests-one 0 "systests: 1 passed, 0 failed" -- $B/systests getrandom
check systests-bad-name 2 "no case named" -- $B/systests no-such-case
# A short fuzz campaign: the random calls must leave the invariants intact
# on Linux too (and never harm this machine: see fuzz.c).  Then one batch
# replayed with its call log, as a failure report says to.
check fuzz 0 "fuzz: done: 20000 calls" -- $B/fuzz -q -s 1 -n 20000
check fuzz-seed2 0 "fuzz: done: 20000 calls" -- $B/fuzz -q -s 2 -n 20000
check fuzz-replay 0 "fuzz: batch 3:" "  0: " -- $B/fuzz -s 7 -r 3
check fuzz-bad-arg 2 "usage: fuzz" -- $B/fuzz -x
# The memory benchmark, quick: every item prints a "mmbench: NAME CYCLES" line.
check mmbench 0 "mmbench: getpid " "mmbench: mprotect-1p " "mmbench: fork-64m " \
	"mmbench-end: 18 items, 3 reps" -- $B/mmbench -q
check mmbench-bad-name 2 "no item named" -- $B/mmbench no-such-item
# More memory than a small machine has (on Ferrite it runs against swap).
check swapstress 0 "swapstress: ok 64 MiB" -- $B/swapstress 64 1
# shmtests: tmpfs files (here /dev/shm, or beside the programs on a host
# without one) and shared anonymous memory, small (on Ferrite,
# tests/shmemswap.rs runs them bigger than RAM against swap).
shm_dir=/dev/shm
[ -d $shm_dir ] && [ -w $shm_dir ] || shm_dir=$PWD/$B
SHM=$shm_dir/shmtests.$$
check shmtests-write 0 "shmtests: write ok 2048 pages" -- $B/shmtests write $SHM 8 7
check shmtests-check 0 "shmtests: check ok 2048 pages" -- $B/shmtests check $SHM 8 7
check shmtests-truncate 0 "shmtests: truncate ok 1024 of 2048 pages kept" -- $B/shmtests truncate $SHM 8 7
rm -f $SHM
check shmtests-shared 0 "shmtests: shared ok 4096 pages" -- $B/shmtests shared 16
check shmtests-bad-arg 2 "usage: shmtests" -- $B/shmtests shared
# thrash, small: a loop and a scan past a hot set, every page checked.
check thrash-loop 0 "thrash: loop 4 2 cycles " "thrash: majflt " "thrash: ok" -- $B/thrash loop 4 2
check thrash-scan 0 "thrash: scan: 32 rounds over the hot set" "thrash: ok" -- $B/thrash scan 2 8 256
check thrash-bad-arg 2 "usage: thrash" -- $B/thrash loop 4
check filemap 0 "filemap: parent ok after 300 rounds" "filemap: child ok after 300 rounds" -- $B/filemap $B/filemap
# memhog: fill checks what it wrote; hold sleeps forever once it holds its memory.
check memhog-fill 0 "memhog: filled 8 MiB, checked" -- $B/memhog fill 8
check memhog-hold 124 "memhog: holding 4 MiB" -- timeout 0.5 $B/memhog hold 4
check memhog-bad-arg 2 "usage: memhog" -- $B/memhog eat 3
# pipes, poll and select (natively: what Linux does); the helper modes for
# shell pipelines; cat, files or standard input.
check pipetests 0 "pipetests: 21 passed, 0 failed" -- $B/pipetests
if grep -q FAILED "$out"; then
	echo "run-host-tests: pipetests printed FAILED lines"
	failed pipetests-lines
fi
check pipetests-gen-count 0 "count: 100000 bytes, 2564 lines, hash f4f54fc2eb5996b3" -- sh -c "$B/pipetests gen 100000 | $B/cat | $B/pipetests count"
check cat-files 0 "hello from ferrite" -- sh -c "$B/hello > /tmp/ferrite-cat.$$ && $B/cat - /tmp/ferrite-cat.$$ </dev/null; s=\$?; rm -f /tmp/ferrite-cat.$$; exit \$s"
check cat-missing 1 "cat: /nonexistent: No such file or directory" -- $B/cat /nonexistent
check pipetests-bad-name 2 "no case named" -- $B/pipetests no-such-case
# spin runs forever: timeout stops it (status 124) after it said hello.
check spin 124 "spin: spinning forever" -- timeout 0.5 $B/spin
check spin-bounded 0 "spin: stopped after 0 s" -- $B/spin 0
# /proc read from a program: formats, self-consistency, pagemap entries.
check proctests 0 "proctests: 10 passed, 0 failed" -- $B/proctests
check proctests-bad-name 2 "no case named" -- $B/proctests no-such-case
check proctests2 0 "proctests2: 7 passed, 0 failed" -- $B/proctests2
check proctests2-loadavg 0 "proctests2: loadavg-rises ... ok" -- $B/proctests2 loadavg-rises
check proctests2-bad-name 2 "no case named" -- $B/proctests2 no-such-case

# Scalability (tools/bench-scale runs it on Ferrite and Linux at 1-4 CPUs),
# quick: every test and variant at 1 and 2 tasks.
check scale 0 "scale: page_fault1-processes tasks 2 ops/s" "scale: page_fault2-threads tasks 2 ops/s" \
	"scale: malloc1-threads tasks 2 ops/s" "scale: done" -- $B/scale -t 0.1 -m 2 -n 2
check scale-shootdown 0 "scale: shootdown threads 1 munmap-cycles" "scale: shootdown threads 2 munmap-cycles" \
	"scale: done" -- $B/scale -t 0.05 -n 2 shootdown
check scale-bad-name 2 "scale: no test named" -- $B/scale page_fault9

# Console output is binary-safe: conbytes writes the 256 byte values (in
# one write, then one write per byte); a pipe receives exactly those bytes.
# utf8: a character split over two writes arrives whole.
expect_bytes=$(mktemp)
i=0
while [ $i -lt 256 ]; do
	# shellcheck disable=SC2059
	printf "\\$(printf %03o $i)"
	i=$((i + 1))
done >"$expect_bytes"
for mode in "" split; do
	if $B/conbytes $mode | cmp -s - "$expect_bytes"; then
		echo "run-host-tests: conbytes${mode:+-$mode} ... ok (256 byte values, exact)"
	else
		echo "run-host-tests: conbytes${mode:+-$mode} ... FAILED ($(
			$B/conbytes $mode | od -An -tx1 | head -3 | tr -s ' \n' ' '))"
		failed "conbytes${mode:+-$mode}"
	fi
done
rm -f "$expect_bytes"
if [ "$($B/conbytes utf8 | od -An -tx1 | tr -d ' \n')" = 3ce282ac3e0a ]; then
	echo "run-host-tests: conbytes-utf8 ... ok"
else
	echo "run-host-tests: conbytes-utf8 ... FAILED"
	failed conbytes-utf8
fi
# Console throughput benchmark, quick: both items print a cycle count.
check catbench 0 "catbench: block " "catbench: lines " "catbench-end: 25200 bytes" -- $B/catbench -q

# The busybox script tests/glibc.rs runs on Ferrite, here with the same
# Debian busybox-static (tools/setup fetches it), no PATH: the same applets.
BB=../target/deps/busybox-static/busybox
if [ -x "$BB" ]; then
	check bb-script 0 "arith 42 2 5" " 2 apple" "dcf49729a7c42bf7d2484b6be627ce1d  -" \
		"bytes 20" "-rw-r--r--" "words 4" "unique 3" "cleaned up" \
		-- env -i PATH=/nonexistent "$BB" sh rootfs/share/bb-script.sh
else
	echo "run-host-tests: bb-script ... skipped (no $BB: run make setup)"
fi

if [ $failures = 0 ]; then
	echo "run-host-tests: all passed"
	exit 0
fi
echo "run-host-tests: $failures FAILED:$failed_names"
exit 1
