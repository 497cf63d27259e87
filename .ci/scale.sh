#!/usr/bin/env bash
# scale.sh: the batch mode run the ways the README shows for scale-out,
# checked against one process running the whole tasks file:
#   1. GNU parallel in local mode runs 2 shards (--shard {}/2), and
#      tools/merge-shards joins them;
#   2. Slurm: a one-node cluster on localhost (munged as user munge on a
#      socket of its own, slurmctld and slurmd as root, no cgroups:
#      proctrack/linuxproc, task/none) runs examples/slurm-batch.sbatch as
#      a 2-task job array; the daemons are stopped at the end.
# In both, the merged output must equal the single run's, timings aside.
# Installs Debian's parallel, slurm-wlm and munge when missing (a SKIP line
# if apt-get cannot). Uses the build of .ci/run (build-ci/) or makes its
# own in build-scale/. Prints one PASS:/FAIL:/SKIP: line per check; exits
# non-zero if any failed. Takes well under a minute once installed.
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
status=0
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	status=1
}
skip() { echo "SKIP: $*"; }
show() { [ -f "$1" ] && tail -n "${2:-20}" "$1" | sed 's/^/    /'; }

missing=""
for p in parallel slurm-wlm munge; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "scale: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; } ||
		echo "scale: apt-get install$missing failed"
fi

build=${RLAIFV_BUILD:-build-ci}
if [ ! -x "$build/rlaifv-infer" ]; then
	build="build-scale"
	if ! { [ -x "$build/rlaifv-infer" ] || { autoreconf -fi >/dev/null 2>&1 && mkdir -p "$build" &&
		(cd "$build" && ../configure --quiet >configure.log 2>&1 && make -j"$(nproc)" >make.log 2>&1); }; }; then
		fail "build in $build"
		show "$build/make.log"
		exit 1
	fi
fi
bin=$top/$build/rlaifv-infer
model=$top/tests/data/stories260K.gguf
tmp=$(mktemp -d)
chmod 755 "$tmp" # munged and the jobs read it
daemons=""
cleanup() {
	for pid in $daemons; do kill "$pid" 2>/dev/null; done
	for pid in $daemons; do
		for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# the tasks: 6 short ones, a few with several candidates
for i in 0 1 2 3 4 5; do
	printf '{"id": "t%d", "prompt": "Once upon a time", "n": %d, "seed": %d, "n_predict": 8}\n' \
		$i $((i % 3 + 1)) $i
done >"$tmp/tasks.jsonl"
strip() { sed -e 's/,"timings":{[^}]*}}$/}/' "$@"; }
if ! "$bin" -m "$model" -t 1 --batch "$tmp/tasks.jsonl" --output "$tmp/single.jsonl" 2>"$tmp/err"; then
	fail "single-process run"
	show "$tmp/err"
	exit 1
fi
strip "$tmp/single.jsonl" >"$tmp/single.cmp"

# 1. GNU parallel, local mode
if command -v parallel >/dev/null 2>&1 && parallel --version 2>/dev/null | grep -q 'GNU parallel'; then
	mkdir "$tmp/par"
	if seq 0 1 | parallel --will-cite -j 2 "$bin" -m "$model" -t 1 --batch "$tmp/tasks.jsonl" \
		--shard {}/2 --output "$tmp/par/out.{}.jsonl" 2>"$tmp/err" &&
		python3 tools/merge-shards -o "$tmp/par.jsonl" "$tmp/tasks.jsonl" "$tmp"/par/out.*.jsonl 2>>"$tmp/err"; then
		strip "$tmp/par.jsonl" | cmp -s - "$tmp/single.cmp" && pass "GNU parallel: 2 shards merged equal one process" ||
			fail "GNU parallel: the merged shards differ from one process"
	else
		fail "GNU parallel: 2 shards"
		show "$tmp/err"
	fi
else
	skip "GNU parallel: not installed"
fi

# 2. Slurm: a one-node cluster of our own on localhost
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null ||
	! id munge >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
	skip "Slurm: slurm-wlm and munge not installed, or not root"
	exit $status
fi
m=$tmp/munge
mkdir -p "$m" "$tmp/state" "$tmp/spool" "$tmp/slurm"
head -c 1024 /dev/urandom >"$m/munge.key"
chown -R munge:munge "$m"
chmod 711 "$m" # the socket is for everyone, as /run/munge's is
chmod 400 "$m/munge.key"
setpriv --reuid=munge --regid=munge --init-groups munged -F --socket="$m/munge.sock" \
	--key-file="$m/munge.key" --pid-file="$m/munged.pid" --log-file="$m/munged.log" \
	--seed-file="$m/munged.seed" >"$tmp/munged.out" 2>&1 &
daemons="$!"
for i in $(seq 50); do [ -S "$m/munge.sock" ] && break; sleep 0.1; done
if ! munge -S "$m/munge.sock" -n 2>/dev/null | unmunge -S "$m/munge.sock" >/dev/null 2>&1; then
	fail "Slurm: munged did not start"
	show "$tmp/munged.out"
	show "$m/munged.log" 2>/dev/null
	exit 1
fi
host=$(hostname -s)
mem=$(awk '/^MemTotal:/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<C
ClusterName=rlaifvci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=46817
SlurmdPort=46818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$m/munge.sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=10 State=UP
C
slurmctld -D -c -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
daemons="$daemons $!"
slurmd -D -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 &
daemons="$daemons $!"
state=""
for i in $(seq 300); do # 30 s
	state=$(sinfo -h -o %T 2>/dev/null)
	[ "$state" = idle ] && break
	sleep 0.1
done
if [ "$state" != idle ]; then
	fail "Slurm: the node is not idle after 30 s ('$state')"
	show "$tmp/slurmctld.log"
	show "$tmp/slurmd.log"
	exit 1
fi
pass "Slurm: one-node cluster up"
job=$(RLAIFV_INFER=$bin RLAIFV_OUT_DIR=$tmp/slurm sbatch --parsable --array=0-1 -c 1 \
	-o "$tmp/slurm/job.%a.log" -D "$tmp" examples/slurm-batch.sbatch "$tmp/tasks.jsonl" "$model" 2>"$tmp/err")
if [ -z "$job" ]; then
	fail "Slurm: sbatch"
	show "$tmp/err"
	exit 1
fi
for i in $(seq 600); do # 60 s
	[ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
	sleep 0.1
done
if [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; then
	fail "Slurm: job $job still queued or running after 60 s"
	squeue -j "$job"
	show "$tmp/slurmctld.log"
elif python3 tools/merge-shards -o "$tmp/slurm.jsonl" "$tmp/tasks.jsonl" "$tmp"/slurm/out.*.jsonl 2>"$tmp/err" &&
	strip "$tmp/slurm.jsonl" | cmp -s - "$tmp/single.cmp"; then
	pass "Slurm: a 2-task job array's merged output equals one process"
else
	fail "Slurm: the job array's merged output differs from one process"
	show "$tmp/err"
	for f in "$tmp"/slurm/job.*.log; do show "$f"; done
fi
exit $status
