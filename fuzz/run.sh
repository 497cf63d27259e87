#!/usr/bin/env bash
# run.sh: runs the libFuzzer targets built by build.sh for a fixed time.
#
#   fuzz/run.sh SRCDIR OUTDIR SECONDS [TARGET...]     (default: all six)
#
# Each target fuzzes a working corpus OUTDIR/corpus-TARGET, seeded from the
# small committed seeds in fuzz/corpus/TARGET and, at run time, from the
# fixtures in tests/data (too large to commit twice). FUZZ_JOBS targets run
# at once (default 1). A crash, leak, sanitizer report, timeout or
# over-limit allocation leaves OUTDIR/TARGET-crash-* (rerun it with
# OUTDIR/fuzz_TARGET FILE) and makes the exit status non-zero. Each
# target's output is in OUTDIR/TARGET.log. Prints one line per target:
# "PASS: fuzz_TARGET (N runs in S s)" or "FAIL: ...".
set -u
src=$(cd "$1" && pwd)
out=$(cd "$2" && pwd)
secs=$3
shift 3
targets=${*:-gguf tokenizer image embcache hub taskjson}
jobs=${FUZZ_JOBS:-1}

# Single-threaded BLAS: the fuzzers are, and libFuzzer's RSS limit is for
# the process as a whole.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export RLAIFV_FUZZ_DATA="$src/tests/data"

# Adds FILE to the corpus DIR with an optional one-byte prefix.
seed() { # seed DIR FILE [PREFIX_OCTAL]
	local dst="$1/seed-$(basename "$2")"
	if [ -n "${3:-}" ]; then
		{ printf "\\$3"; cat "$2"; } >"$dst"
	else
		cp "$2" "$dst"
	fi
}

max_len_of() {
	case $1 in
	gguf) echo 1300000 ;; # every model fixture up to the 1.2 MB Q6_K one
	*) echo 65536 ;;
	esac
}

# One allocation above this is reported: a hostile input must never get the
# library to ask for more. (stb_image's own cap is 768 MiB.)
malloc_limit_of() {
	case $1 in
	image) echo 1024 ;;
	*) echo 256 ;;
	esac
}

prepare() { # prepare TARGET: fills the working corpus
	local t=$1 dir="$out/corpus-$1" f
	mkdir -p "$dir"
	cp "$src/fuzz/corpus/$t/"* "$dir/" 2>/dev/null
	case $t in
	gguf)
		for f in "$src"/tests/data/*.gguf "$src"/tests/data/bad/*.gguf \
			"$src"/tests/data/tokenizers/*/vocab.gguf "$src"/tests/data/*/*.gguf; do
			[ "$(stat -c %s "$f")" -le "$(max_len_of gguf)" ] && seed "$dir" "$f"
		done
		;;
	image)
		for f in "$src"/tests/data/*.png "$src"/tests/data/*.jpg "$src"/tests/data/bad/image-*; do
			seed "$dir" "$f" 001 # EXIF on, 1x1 output
			seed "$dir" "$f" 056 # EXIF off, 24x24 output
		done
		;;
	tokenizer)
		# Plain and special-parsing text of the README.
		head -c 4000 "$src/README" >"$dir/seed-readme.txt.tmp"
		seed "$dir" "$dir/seed-readme.txt.tmp" 000
		seed "$dir" "$dir/seed-readme.txt.tmp" 002
		# The same on the mini BPE (qwen2, smollm) and gemma3 vocabularies.
		for p in 010 012 020 022 030 032; do
			cp "$dir/seed-readme.txt.tmp" "$dir/seed-readme-$p.txt.tmp"
			seed "$dir" "$dir/seed-readme-$p.txt.tmp" $p
			rm -f "$dir/seed-readme-$p.txt.tmp"
		done
		rm -f "$dir/seed-readme.txt.tmp"
		;;
	esac
}

run_one() { # run_one TARGET: returns libFuzzer's status
	local t=$1 tmp rc
	# Scratch files of the target (fuzz_embcache writes one per input):
	# on tmpfs when there is one, and removed here whatever happens.
	tmp=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "$out")/rlaifv-fuzz.XXXXXX")
	RLAIFV_FUZZ_TMP=$tmp "$out/fuzz_$t" -max_total_time="$secs" -timeout=30 \
		-rss_limit_mb=2048 -malloc_limit_mb="$(malloc_limit_of "$t")" \
		-max_len="$(max_len_of "$t")" -print_final_stats=1 -artifact_prefix="$out/$t-" \
		"$out/corpus-$t" >"$out/$t.log" 2>&1
	rc=$?
	rm -rf "$tmp"
	return $rc
}

report() { # report TARGET STATUS
	local runs
	runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$out/$1.log" | tail -n 1)
	if [ "$2" -eq 0 ]; then
		echo "PASS: fuzz_$1 (${runs:-no summary})"
	else
		echo "FAIL: fuzz_$1 (status $2; see $out/$1.log and $out/$1-crash-*)"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|property failed|.*runtime error)' "$out/$1.log" |
			head -n 5
	fi
}

status=0
pids=() names=()
for t in $targets; do
	if [ ! -x "$out/fuzz_$t" ]; then
		echo "FAIL: fuzz_$t (not built: run fuzz/build.sh first)"
		status=1
		continue
	fi
	prepare "$t"
	run_one "$t" &
	pids+=($!) names+=("$t")
	if [ "${#pids[@]}" -ge "$jobs" ]; then
		wait "${pids[0]}"
		rc=$?
		report "${names[0]}" "$rc"
		[ "$rc" -eq 0 ] || status=1
		pids=("${pids[@]:1}") names=("${names[@]:1}")
	fi
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}"
	rc=$?
	report "${names[$i]}" "$rc"
	[ "$rc" -eq 0 ] || status=1
done
exit $status
