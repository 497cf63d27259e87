#!/usr/bin/env bash
# .ci/deb.sh: ships rlaifv the Debian way and checks the result as a user
# would meet it. In build-deb/ (never the source directory): make distcheck;
# make deb (dist tarball -> .orig.tar.gz -> dpkg-buildpackage -> lintian,
# which must report no error and no warning); then the packages are
# installed, debian/tests/smoke runs against them, the kernel dispatch is
# checked on this CPU and on emulated older ones, and the packages are
# purged again. One "PASS: name" / "FAIL: name" line per step; the exit
# status is non-zero when a step failed. Usage: bash .ci/deb.sh
set -u
cd "$(dirname "$0")/.."
src=$PWD
build=$src/build-deb
logs=$build/logs
jobs=$(nproc 2>/dev/null || echo 2)
pkgs="rlaifv-infer librlaifv-dev librlaifv0"
failed=0
passed=0

# step NAME COMMAND...: runs one step, its output in logs/NAME.log (the
# tail is shown when it fails).
step() {
	local name=$1 log
	shift
	log="$logs/$(printf '%s' "$name" | tr -c 'A-Za-z0-9.-' '_').log"
	if "$@" >"$log" 2>&1; then
		echo "PASS: $name"
		passed=$((passed + 1))
		return 0
	fi
	echo "FAIL: $name"
	tail -n 40 "$log" | sed 's/^/    /'
	failed=$((failed + 1))
	return 1
}
skip() { echo "FAIL: $1 (not run: $2)"; failed=$((failed + 1)); }

git_before=$(git status --porcelain 2>/dev/null)
rm -rf "$build"
mkdir -p "$logs"

# ---- tools ------------------------------------------------------------------
deps="build-essential autoconf automake libtool pkgconf libopenblas-dev libstb-dev \
      zlib1g-dev libcurl4-openssl-dev groff-base debhelper dh-autoreconf dpkg-dev fakeroot lintian binutils"
[ "$(uname -m)" = x86_64 ] && deps="$deps qemu-user-static"
install_deps() {
	local missing="" p
	for p in $deps; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing
}
step deps install_deps || { echo "$passed passed, $failed failed"; exit 1; }

# ---- build tree -------------------------------------------------------------
# autoreconf writes only files .gitignore lists (configure is not in git).
configure() { autoreconf -fi "$src" && cd "$build" && "$src/configure" --quiet; }
if ! step configure configure; then
	echo "$passed passed, $failed failed"
	exit 1
fi
cd "$build"

step distcheck make -j"$jobs" distcheck

# The package's own build runs the test suite again, with Debian's
# hardening flags: that is the point of it, so it is not skipped.
step "deb (dpkg-buildpackage, lintian)" env DEB_BUILD_OPTIONS="parallel=$jobs" make deb
# lintian's tags (E: W: I: P: lines) for the record.
grep -E '^[EWIPXO]: ' "$logs/deb__dpkg-buildpackage__lintian_.log" 2>/dev/null | sed 's/^/    lintian /'

# ---- the installed packages -------------------------------------------------
# (not the -dbgsym packages: nothing here needs them)
debs=$(ls deb/*.deb 2>/dev/null | grep -v -- -dbgsym_)
installed=no
purge() { apt-get purge -y -qq $pkgs && ! ls /usr/lib/*/librlaifv* /usr/include/rlaifv.h \
	/usr/bin/rlaifv-infer /usr/share/man/man1/rlaifv-infer.1.gz /usr/share/rlaifv 2>/dev/null; }
# Never leave the packages behind, even when interrupted.
trap '[ "$installed" = yes ] && purge >/dev/null 2>&1' EXIT
if [ -n "$debs" ] && step "install the .debs" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends $(printf './%s ' $debs); then
	installed=yes
	# autopkgtest runs this from the unpacked source tree; so do we.
	smoke() { (cd deb/rlaifv-*/ && AUTOPKGTEST_TMP=$(mktemp -d) sh debian/tests/smoke); }
	step "smoke test (debian/tests/smoke)" smoke
	sed -n 's/^\(PASS\|FAIL\): /    smoke: \1: /p' "$logs/smoke_test__debian_tests_smoke_.log"

	# The kernel sets a --version kernels line names: one set, or the
	# measured choice "auto: F32 avx512, F16 avx2+avx512, ..." (the exact
	# products' set, then the prompts' when it differs).
	kernel_sets() {
		printf '%s\n' "$1" | sed -n 's/^kernels: //p' | sed 's/^auto://' | tr ',' '\n' |
			awk 'NF { print $NF }' | tr '+' '\n' | sort -u
	}
	# Whether every set the line names is one of the allowed ones.
	sets_within() { # sets_within "ALLOWED ..." LINE
		local sets s
		sets=$(kernel_sets "$2")
		[ -n "$sets" ] || return 1
		for s in $sets; do
			case " $1 " in *" $s "*) ;; *) return 1 ;; esac
		done
	}

	# The package is built for the baseline ISA; the kernels are chosen
	# at run time from what the CPU has (simd/dispatch.c's rules).
	expect_isa() {
		local f=$(grep -m1 '^flags' /proc/cpuinfo) want=scalar got
		has() { case " $f " in *" $1 "*) ;; *) return 1 ;; esac; }
		if has avx2 && has fma && has f16c; then
			want=avx2
			has avx512f && has avx512bw && has avx512vl && has avx512_vnni && want=avx512
		fi
		[ "$(uname -m)" = aarch64 ] && want=neon
		got=$(rlaifv-infer --version | sed -n 's/^kernels: //p')
		echo "this CPU: kernels $got (expected $want or, measured per type, sets up to it)"
		case $want in
		avx512) sets_within "avx512 avx2 scalar" "kernels: $got" ;;
		avx2) sets_within "avx2 scalar" "kernels: $got" ;;
		neon) sets_within "neon-dotprod neon scalar" "kernels: $got" ;;
		*) sets_within "scalar" "kernels: $got" ;;
		esac
	}
	step "kernels chosen for this CPU" expect_isa

	# Older CPUs, emulated: Nehalem has no AVX (the scalar kernels must
	# run and nothing built for the baseline may use AVX), Haswell has AVX2
	# but no AVX-512.
	# One thread: emulated threads that spin-wait only slow qemu down.
	# qemu's warnings about CPU features TCG lacks are dropped.
	emulated() { # emulated CPU KERNELS
		local cpu=$1 out dir
		dir=$(ls -d deb/rlaifv-*/)
		q() {
			local rc
			# OpenBLAS is told the core: under qemu-user its own detection
			# can see the host's (Haswell kernels on an AMD Zen 5 host)
			(cd "$dir" && OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE="$cpu" \
				XDG_CACHE_HOME="$logs/cache" \
				qemu-x86_64-static -cpu "$cpu" /usr/bin/rlaifv-infer "$@") 2>"$logs/qemu.err"
			rc=$?
			grep -v "TCG doesn't support" "$logs/qemu.err" >&2
			return $rc
		}
		out=$(q --version) || return 1
		echo "$out"
		sets_within "$2" "$(printf '%s\n' "$out" | grep '^kernels: ')" || return 1
		out=$(q -t 1 -m tests/data/stories260K.gguf -p "Once upon a time" -n 64 --temp 0) ||
			return 1
		echo "$out"
		case "$out" in ", there was a little girl named Lily."*) ;; *) return 1 ;; esac
		# the vision encoder and the BLAS as well
		q -t 1 -m tests/data/tiny-llava-text-f32.gguf --mmproj tests/data/tiny-llava-mmproj-f32.gguf \
			-n 4 --no-cache tests/data/shapes_64x48.png "describe"
	}
	if [ "$(uname -m)" = x86_64 ] && command -v qemu-x86_64-static >/dev/null; then
		step "scalar kernels on an emulated Nehalem" emulated Nehalem scalar
		step "AVX2 kernels on an emulated Haswell" emulated Haswell "avx2 scalar"
	fi

	step "purge the packages" purge && installed=no
else
	skip "smoke test (debian/tests/smoke)" "no packages installed"
fi

# ---- nothing left behind ----------------------------------------------------
cd "$src"
step "git status unchanged" test "$(git status --porcelain 2>/dev/null)" = "$git_before"

echo "deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
