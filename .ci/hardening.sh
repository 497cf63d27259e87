#!/usr/bin/env bash
# hardening.sh: the checks that every untrusted input is rejected cleanly
# and that the code is sanitizer-clean. Called by .ci/run; runs on its own
# from a clean clone too (bash .ci/hardening.sh). Steps:
#   1. the whole test suite (make check) built with AddressSanitizer and
#      UndefinedBehaviorSanitizer (configure --enable-sanitizers, clang);
#   1b. the API misuse test (one context from two threads, one model shared
#      by two) built with ThreadSanitizer;
#   2. the kernel tests of a normal -O2 build under valgrind, once with
#      RLAIFV_ISA=avx2 and once with RLAIFV_ISA=scalar (valgrind has no
#      AVX-512 and hides it from CPUID, so test_kernels never picks it);
#   3. model files claiming absurd sizes, loaded by the CLI under ulimit -v:
#      refused with exit 3, never an allocation of what they claim;
#   4. each libFuzzer target (fuzz/) for HARDENING_FUZZ_SECONDS (60) s.
# Prints one "PASS: name" or "FAIL: name" line per step and exits non-zero
# if any failed. Builds only in build-asan/ and build-hardening/ (ignored by
# git), so the work tree stays clean.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_secs=${HARDENING_FUZZ_SECONDS:-60}
status=0

pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	status=1
}
# Shows the end of a log after a failure.
show() { [ -f "$1" ] && tail -n "${2:-40}" "$1" | sed 's/^/    /'; }

# clang with its sanitizer and libFuzzer runtimes, and valgrind.
deps="clang libclang-rt-14-dev valgrind"
missing=""
for p in $deps; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq $missing; } >/dev/null 2>&1 ||
		fail "apt-get install$missing"
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi >/dev/null 2>&1 || fail "autoreconf"
fi

# ---- 1. make check under ASan + UBSan ----------------------------------------
# Any report is fatal (-fno-sanitize-recover), leaks included.
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
asan_ok=no
mkdir -p build-asan
if (cd build-asan && ../configure --quiet --enable-sanitizers CC=clang >configure.log 2>&1 &&
	make -j"$jobs" >make.log 2>&1); then
	asan_ok=yes
	pass "asan-ubsan: build (configure --enable-sanitizers CC=clang)"
	if (cd build-asan && make -j"$jobs" check >check.log 2>&1); then
		n=$(grep -c '^PASS:' build-asan/check.log)
		pass "asan-ubsan: make check ($n tests)"
	else
		fail "asan-ubsan: make check: $(grep -E '^(FAIL|ERROR|XPASS):' build-asan/check.log |
			tr '\n' ' ')"
		show build-asan/test-suite.log 80
	fi
else
	fail "asan-ubsan: build"
	show build-asan/configure.log
	show build-asan/make.log
fi

# ---- 1b. the threading test under ThreadSanitizer -----------------------------
# test_api_misuse runs one context from two threads (the second must get
# RV_ERR_BUSY) and one model from two threads with a context each (the
# documented way). The library is built without OpenMP, whose runtime is
# not instrumented and would only give false reports; BLAS runs one thread.
mkdir -p build-tsan
if (cd build-tsan && ../configure --quiet --disable-openmp CC=clang \
	CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" >configure.log 2>&1 &&
	make -j"$jobs" librlaifv.la tests/test_api_misuse >make.log 2>&1); then
	if (cd build-tsan && srcdir="$top" OPENBLAS_NUM_THREADS=1 \
		TSAN_OPTIONS=halt_on_error=1:exitcode=66 tests/test_api_misuse >tsan.log 2>&1); then
		pass "tsan: test_api_misuse ($(tail -n 1 build-tsan/tsan.log))"
	else
		fail "tsan: test_api_misuse"
		show build-tsan/tsan.log 60
	fi
else
	fail "tsan: build (configure --disable-openmp CC=clang CFLAGS=-fsanitize=thread)"
	show build-tsan/make.log
fi

# ---- 2. kernel tests under valgrind ------------------------------------------
mkdir -p build-hardening
if (cd build-hardening && ../configure --quiet >configure.log 2>&1 &&
	make -j"$jobs" rlaifv-infer tests/test_kernels >make.log 2>&1); then
	for isa in avx2 scalar; do
		case "$isa:$(uname -m)" in
		avx2:x86_64 | scalar:*) ;;
		*) continue ;; # no AVX2 kernels on this architecture
		esac
		if grep -qw avx2 /proc/cpuinfo || [ "$isa" = scalar ]; then
			if (cd build-hardening && srcdir="$top" RLAIFV_ISA=$isa OMP_NUM_THREADS=2 \
				valgrind -q --error-exitcode=1 tests/test_kernels \
				>valgrind-$isa.log 2>&1); then
				pass "valgrind: test_kernels RLAIFV_ISA=$isa"
			else
				fail "valgrind: test_kernels RLAIFV_ISA=$isa"
				show build-hardening/valgrind-$isa.log
			fi
		fi
	done
	build_ok=yes
else
	fail "normal build for valgrind"
	show build-hardening/make.log
	build_ok=no
fi

# ---- 3. absurd size claims under ulimit -v -----------------------------------
# Little-endian integers for printf.
le64() { printf "$(printf '\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) \
	$(($1 >> 24 & 255)) $(($1 >> 32 & 255)) $(($1 >> 40 & 255)) $(($1 >> 48 & 255)) \
	$(($1 >> 56 & 255)))"; }
le32() { printf "$(printf '\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) \
	$(($1 >> 24 & 255)))"; }
if [ "$build_ok" = yes ]; then
	d=build-hardening/claims
	mkdir -p "$d"
	# 1 key: a string array claiming 2^40 elements
	{ printf 'GGUF'; le32 3; le64 0; le64 1; le64 21; printf 'tokenizer.ggml.tokens'
		le32 9; le32 8; le64 $((1 << 40)); head -c 64 /dev/zero; } >"$d/strings.gguf"
	# 2^31 tensors
	{ printf 'GGUF'; le32 3; le64 $((1 << 31)); le64 0; head -c 256 /dev/zero; } >"$d/tensors.gguf"
	# a 2^62-element tensor
	{ printf 'GGUF'; le32 3; le64 1; le64 0; le64 17; printf 'token_embd.weight'
		le32 2; le64 $((1 << 31)); le64 $((1 << 31)); le32 0; le64 0; } >"$d/elements.gguf"
	# The limit leaves room for real work: the shipped model answers under it.
	out=$(cd build-hardening && ulimit -v 400000 && ./rlaifv-infer -m \
		"$top/tests/data/stories260K.gguf" -p "Once upon a time" -n 8 --temp 0 -c 128 2>&1)
	case "$out" in
	", there was a little girl"*) pass "ulimit -v 400 MB: stories260K still answers" ;;
	*) fail "ulimit -v 400 MB: stories260K: $out" ;;
	esac
	for f in strings tensors elements; do
		out=$(cd build-hardening && ulimit -v 400000 &&
			./rlaifv-infer -m "claims/$f.gguf" -p x -n 1 2>&1)
		rc=$?
		if [ "$rc" -eq 3 ] && echo "$out" | grep -q "claims/$f.gguf"; then
			pass "ulimit -v 400 MB: $f.gguf refused ($(echo "$out" | cut -c1-120))"
		else
			fail "ulimit -v 400 MB: $f.gguf: exit $rc: $out"
		fi
	done
fi

# ---- 4. fuzzing ----------------------------------------------------------------
if [ "$asan_ok" = yes ]; then
	if (cd build-asan && make fuzz FUZZ_SECONDS="$fuzz_secs" FUZZ_JOBS="$jobs" \
		>fuzz.log 2>&1); then
		grep -E '^(PASS|FAIL): fuzz_' build-asan/fuzz.log
	else
		if grep -qE '^(PASS|FAIL): fuzz_' build-asan/fuzz.log; then
			grep -E '^(PASS|FAIL): fuzz_' build-asan/fuzz.log
			status=1
		else
			fail "fuzz: build"
			show build-asan/fuzz.log
		fi
		for l in build-asan/fuzz-build/*.log; do
			grep -q 'ERROR\|deadly signal\|runtime error\|property failed' "$l" &&
				show "$l" 30
		done
	fi
fi

exit $status
