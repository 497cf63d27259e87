#!/usr/bin/env bash
# build.sh: builds the libFuzzer targets (fuzz_*.c) straight from the
# runtime's sources with clang -fsanitize=fuzzer,address,undefined.
#
#   fuzz/build.sh SRCDIR BUILDDIR OUTDIR
#
# BUILDDIR is a configured build tree (its config.h says which kernels this
# architecture has). The libtool libraries are not used: every object is
# compiled here with the fuzzer's coverage instrumentation, and without
# OpenMP so that runs are single-threaded and reproducible. `make fuzz`
# calls this with FUZZ_SOURCES set from Makefile.am's source lists; LIBS
# adds the link libraries (BLAS, zlib, libcurl for fuzz_hub, which includes
# rlaifv-infer's hub.c). FUZZ_CC picks the compiler.
set -eu
src=$(cd "$1" && pwd)
bld=$(cd "$2" && pwd)
out=$3
cc=${FUZZ_CC:-clang}
mkdir -p "$out/obj"
out=$(cd "$out" && pwd)

if [ -z "${FUZZ_SOURCES:-}" ]; then
	echo "build.sh: FUZZ_SOURCES is empty (run it through make fuzz)" >&2
	exit 2
fi

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cflags="-std=c11 -D_GNU_SOURCE -DHAVE_CONFIG_H -O1 -g $san -fsanitize=fuzzer-no-link \
	-I$bld -I$src/include -I$src \
	-DFUZZ_TESTDATA=\"$src/tests/data\" ${BLAS_CFLAGS:-} ${ZLIB_CFLAGS:-} ${CURL_CFLAGS:-}"

objs=()
compile() { # compile FILE EXTRA_FLAGS...: one object, rebuilt when the source is newer
	local f=$1
	shift
	local o="$out/obj/$(echo "$f" | tr / _).o"
	if [ ! -e "$o" ] || [ "$src/$f" -nt "$o" ] || [ -n "$(find "$src/src" "$src/simd" \
		"$src/models" "$src/include" -name '*.h' -newer "$o" 2>/dev/null | head -n 1)" ]; then
		$cc $cflags "$@" -c "$src/$f" -o "$o"
	fi
	objs+=("$o")
}

for f in $FUZZ_SOURCES; do
	case $f in
	# Debian's stb_image (third-party, not ours to patch) shifts its JPEG bit
	# buffer by 32 on some corrupt streams (stbi__grow_buffer_unsafe): UBSan
	# stops there within a minute of fuzzing. That file keeps ASan, which is
	# what guards memory; UBSan checks the rest of the tree.
	src/image/stb_image_impl.c) compile "$f" -fno-sanitize=undefined ;;
	*.c) compile "$f" ;;
	*) ;; # the lists name headers too
	esac
done
# The per-ISA kernel files, with the flags Makefile.am gives them; the
# dispatcher only calls them after checking the CPU.
case "$(uname -m)" in
x86_64 | amd64)
	compile simd/avx2.c -mavx2 -mfma -mf16c
	for f in $(cd "$src" && echo simd/avx512*.c); do
		compile "$f" -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni
	done
	;;
aarch64 | arm64)
	compile simd/neon.c
	compile simd/neon_dotprod.c -march=armv8.2-a+dotprod
	;;
esac

# hub.c (inside fuzz_hub) decodes \u escapes with cli_json.c's cj_hex4
$cc $cflags -c "$src/programs/rlaifv-infer/cli_json.c" -o "$out/obj/cli_json.o"
for t in gguf tokenizer image embcache hub taskjson; do
	extra=()
	[ "$t" = hub ] && extra=("$out/obj/cli_json.o")
	$cc $cflags -c "$src/fuzz/fuzz_$t.c" -o "$out/obj/fuzz_$t.o"
	$cc -fsanitize=fuzzer,address,undefined -o "$out/fuzz_$t" "$out/obj/fuzz_$t.o" \
		"${extra[@]}" "${objs[@]}" ${LIBS:-} -lm -lpthread
done
echo "fuzz targets built in $out"
