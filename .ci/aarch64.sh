#!/usr/bin/env bash
# .ci/aarch64.sh: cross-builds rlaifv for aarch64 and runs, under qemu-user
# with every CPU feature on (-cpu max, which has the dot-product extension):
#   - tests/test_kernels, which tests each usable kernel set (neon-dotprod,
#     neon, scalar) against the double reference and the scalar table;
#   - tests/test_kernels again on a Cortex-A72 (no dotprod), where dispatch
#     must offer neon and scalar only;
#   - tests/test_llama, the end-to-end references under every kernel set;
#   - rlaifv-infer's greedy story on stories260K with RLAIFV_ISA=neon and
#     RLAIFV_ISA=neon-dotprod, against the llama.cpp reference text.
# Prints "PASS: name" or "FAIL: name" per check and exits non-zero on any
# failure. Build directory: build-aarch64 (or $AARCH64_BUILD_DIR).
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
build=${AARCH64_BUILD_DIR:-$top/build-aarch64}
host=aarch64-linux-gnu
jobs=$(nproc 2>/dev/null || echo 2)
failed=0

pass() { echo "PASS: $*"; }
# diagnostics are indented so that no line of theirs counts as a check
show() { sed 's/^/    /'; }
fail() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}

# ---- dependencies: install only what is missing ------------------------------
deps="gcc-aarch64-linux-gnu libc6-dev-arm64-cross libopenblas-dev:arm64 zlib1g-dev:arm64
      qemu-user-static libstb-dev make autoconf automake libtool pkgconf autoconf-archive"
missing=""
for p in $deps; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "aarch64: installing$missing"
	sudo=""
	[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		$sudo dpkg --add-architecture arm64
	fi
	# shellcheck disable=SC2086 # $missing is a list of words
	if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq $missing >/dev/null; }; then
		fail "aarch64 dependencies (apt-get install$missing)"
		exit 1
	fi
fi

# ---- cross-build -----------------------------------------------------------------
# --without-curl: the kernels are what this checks, and it keeps the build
# without libcurl (rlaifv-infer --hf) compiled somewhere in CI.
# pkg-config must see the arm64 .pc files only (openblas, zlib); a triplet
# wrapper does exactly that when the distribution has one.
if command -v $host-pkg-config >/dev/null; then
	export PKG_CONFIG=$host-pkg-config
else
	export PKG_CONFIG=pkg-config
	export PKG_CONFIG_LIBDIR=/usr/lib/$host/pkgconfig:/usr/share/pkgconfig
	unset PKG_CONFIG_PATH
fi

mkdir -p "$build"
log=$build/aarch64-build.log
if { [ -x configure ] || autoreconf -fi >"$log" 2>&1; } &&
	(cd "$build" && "$top/configure" --host=$host --quiet --without-curl >>"$log" 2>&1) &&
	make -C "$build" -j"$jobs" all >>"$log" 2>&1 &&
	make -C "$build" -j"$jobs" tests/test_kernels tests/test_llama >>"$log" 2>&1; then
	pass "aarch64 cross-build"
else
	tail -n 40 "$log" | show
	fail "aarch64 cross-build (log: $log)"
	exit 1
fi

# ---- running under qemu ---------------------------------------------------------
# The dynamic loader comes from the cross glibc (QEMU_LD_PREFIX); libc must
# come from the same build, so that directory goes first on the library
# path. (Otherwise the loader finds libc6:arm64's libc, which openblas
# pulls in, through the host's ld.so.cache: a mismatched pair that hangs at
# start-up.) Then OpenBLAS's directory (not a default one for Debian's
# alternatives) and the build's shared library for rlaifv-infer.
blas_libdir=$($PKG_CONFIG --variable=libdir openblas 2>/dev/null)
export QEMU_LD_PREFIX=/usr/$host
export LD_LIBRARY_PATH=/usr/$host/lib:${blas_libdir:-/usr/lib/$host}:$build/.libs
export srcdir=$top top_builddir=$build
qemu="qemu-aarch64-static"
limit=900 # seconds per run: a hang becomes a failure, not a stuck CI

# The program itself, not a libtool wrapper script (a shell script would be
# run by the host shell with host libraries).
real_bin() {
	local b=$1
	if [ "$(head -c 2 "$b" 2>/dev/null)" = "#!" ]; then
		b="$(dirname "$b")/.libs/$(basename "$b")"
	fi
	echo "$b"
}

# run_test NAME CPU PROGRAM [PATTERN...]: passes when PROGRAM exits 0 and
# its output has every PATTERN line ("!PATTERN": must not have it).
run_test() {
	local name=$1 cpu=$2 prog out rc p
	prog=$(real_bin "$3")
	shift 3
	out=$build/$(basename "$prog").$cpu.log
	timeout $limit $qemu -cpu "$cpu" "$prog" >"$out" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		{
			grep -E '^FAIL' "$out" | head -n 20
			tail -n 5 "$out"
		} | show
		fail "$name (exit $rc, log: $out)"
		return
	fi
	for p in "$@"; do
		case $p in
		!*) if grep -qxF -- "${p#!}" "$out"; then
			fail "$name: '${p#!}' in $out"
			return
		fi ;;
		*) if ! grep -qxF -- "$p" "$out"; then
			fail "$name: no '$p' in $out"
			return
		fi ;;
		esac
	done
	pass "$name"
}

run_test "aarch64 test_kernels (neon-dotprod, neon, scalar)" max "$build/tests/test_kernels" \
	"testing the neon-dotprod kernels" "testing the neon kernels" "testing the scalar kernels"
run_test "aarch64 test_kernels without dotprod (Cortex-A72: neon, scalar)" cortex-a72 \
	"$build/tests/test_kernels" "testing the neon kernels" "testing the scalar kernels" \
	"!testing the neon-dotprod kernels"
run_test "aarch64 test_llama (neon-dotprod, neon, scalar)" max "$build/tests/test_llama" \
	"-- neon-dotprod kernels" "-- neon kernels" "-- scalar kernels"

# The reference text of the greedy story: greedy.text of the llama.cpp run,
# read with whichever of python3, jq or sed gives an answer.
ref=$top/tests/data/refs/stories260K.Once_upon_a_time.json
want=$(python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["greedy"]["text"])' \
	"$ref" 2>/dev/null)
[ -n "$want" ] || want=$(jq -j .greedy.text "$ref" 2>/dev/null)
if [ -z "$want" ]; then
	# the first "text" line is greedy's; unescape \n, \" and \\ only
	want=$(sed -n '/^ *"greedy": {/,/^ *}/{s/^ *"text": "\(.*\)",\{0,1\}$/\1/p}' "$ref" | head -n 1 |
		sed 's/\\n/\n/g; s/\\"/"/g; s/\\\\/\\/g')
fi
infer=$(real_bin "$build/rlaifv-infer")
for isa in neon neon-dotprod; do
	name="aarch64 rlaifv-infer greedy stories260K (RLAIFV_ISA=$isa)"
	got=$(RLAIFV_ISA=$isa timeout $limit $qemu -cpu max "$infer" -m "$top/tests/data/stories260K.gguf" \
		-n 64 --temp 0 -c 128 -p "Once upon a time" 2>"$build/infer.$isa.err")
	rc=$?
	if [ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]; then
		pass "$name"
	else
		{
			echo "got:  '$got'"
			echo "want: '$want'"
			cat "$build/infer.$isa.err"
		} | show
		fail "$name (exit $rc)"
	fi
done

echo "aarch64: done in ${SECONDS}s"
[ "$failed" -eq 0 ]
