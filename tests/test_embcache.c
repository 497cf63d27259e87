/* test_embcache.c: SHA-256 against the FIPS 180 examples and lengths around
 * the padding boundary; the embedding-cache key against its documented
 * construction; store/load round trips (bit-exact, with NaN payloads and
 * denormals); misses for other keys and dimensions; entries corrupted in
 * every field, truncated, forged or replaced by foreign files, which must
 * miss without crashing or allocating and then be rewritten by a store;
 * failing stores; the cache directory rules ($XDG_CACHE_HOME, $HOME); and
 * concurrent writers never showing a reader a partial entry. Everything
 * happens in a mkdtemp directory that is removed at the end. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "src/embcache.h"
#include "src/sha256.h"
#include "tests/testutil.h"

static char root[256]; /* the mkdtemp directory */

/* ---- helpers ------------------------------------------------------------- */

static void hex_of(const uint8_t d[32], char hex[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static bool digest_is(const uint8_t d[32], const char *want)
{
	char hex[65];
	hex_of(d, hex);
	return strcmp(hex, want) == 0;
}

static bool write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return false;
	bool ok = fwrite(data, 1, n, f) == n;
	return fclose(f) == 0 && ok;
}

static void make_dir(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", root, name);
	if (mkdir(out, 0700) != 0)
		fprintf(stderr, "mkdir %s: %s\n", out, strerror(errno));
}

/* Files in dir whose name starts with '.', other than . and ..: temporary
 * files a store should never leave behind. */
static int count_temp_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		chmod(path, 0700); /* a read-only directory from a test */
	return remove(path);
}

static void fill_random(float *x, size_t n, uint64_t seed)
{
	uint64_t s = seed;
	for (size_t i = 0; i < n; i++)
		x[i] = tu_rand_uniform(&s, -8.0f, 8.0f);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t *read_all(const char *path, size_t *n)
{
	return (uint8_t *)tu_read_file(path, n);
}

/* ---- SHA-256 ------------------------------------------------------------- */

static void test_sha256(void)
{
	uint8_t d[32];
	/* FIPS 180-2 appendix B and the NIST examples. */
	rvi_sha256("abc", 3, d);
	CHECK(digest_is(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	      "abc");
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	rvi_sha256(m448, strlen(m448), d);
	CHECK(digest_is(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
	      "448-bit message");
	const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
	                   "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	rvi_sha256(m896, strlen(m896), d);
	CHECK(digest_is(d, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
	      "896-bit message");
	rvi_sha256(NULL, 0, d);
	CHECK(digest_is(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	      "empty message");

	/* One million 'a' through the incremental API, in uneven pieces so
	 * every position of the block buffer is crossed. */
	static char a_buf[1000];
	memset(a_buf, 'a', sizeof(a_buf));
	rvi_sha256_ctx c;
	rvi_sha256_init(&c);
	size_t fed = 0;
	for (size_t piece = 1; fed < 1000000; piece = piece % 997 + 1) {
		size_t take = piece < 1000000 - fed ? piece : 1000000 - fed;
		rvi_sha256_update(&c, a_buf, take);
		fed += take;
	}
	rvi_sha256_final(&c, d);
	CHECK(digest_is(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	      "one million 'a'");

	/* Lengths around the padding boundary (55 fits one block, 56 needs
	 * two) — values from Python's hashlib. */
	static const struct {
		size_t n;
		const char *hex;
	} as[] = {
	    {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
	    {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
	    {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
	    {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
	    {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
	    {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
	};
	for (size_t i = 0; i < sizeof(as) / sizeof(as[0]); i++) {
		rvi_sha256(a_buf, as[i].n, d);
		CHECK(digest_is(d, as[i].hex), "%zu x 'a'", as[i].n);
	}

	/* Incremental == one-shot for random messages cut at random places,
	 * zero-length (and NULL) pieces included. */
	uint64_t s = 42;
	uint8_t msg[700];
	for (int iter = 0; iter < 300; iter++) {
		size_t n = (size_t)(tu_rand_u64(&s) % sizeof(msg));
		for (size_t i = 0; i < n; i++)
			msg[i] = (uint8_t)tu_rand_u64(&s);
		uint8_t one[32], inc[32];
		rvi_sha256(msg, n, one);
		rvi_sha256_init(&c);
		for (size_t at = 0; at < n;) {
			size_t take = (size_t)(tu_rand_u64(&s) % 150);
			if (take > n - at)
				take = n - at;
			rvi_sha256_update(&c, msg + at, take);
			if (take == 0)
				rvi_sha256_update(&c, NULL, 0);
			at += take;
		}
		rvi_sha256_final(&c, inc);
		CHECK(!memcmp(one, inc, 32), "random split, message of %zu bytes", n);
	}

	char hex[65];
	rvi_sha256("abc", 3, d);
	rvi_sha256_hex(d, hex);
	CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	      "rvi_sha256_hex %s", hex);
	tu_sha256_hex("abc", 3, hex);
	CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	      "tu_sha256_hex %s", hex);
}

/* ---- key ----------------------------------------------------------------- */

static void test_key(void)
{
	uint8_t id[32], id2[32];
	for (int i = 0; i < 32; i++)
		id[i] = (uint8_t)(i * 7 + 1), id2[i] = id[i];
	id2[31] ^= 1;
	const uint8_t image[] = {0xff, 0xd8, 0xff, 0xe0, 'J', 'F', 'I', 'F', 0, 1, 2, 3};
	const char params[] = "exif=1 size=336";

	/* The construction embcache.h documents, assembled by hand. */
	uint8_t buf[256];
	size_t n = 0;
	memcpy(buf + n, "rlaifv embcache key v1", 23); /* with its NUL */
	n += 23;
	memcpy(buf + n, id, 32);
	n += 32;
	put_le64(buf + n, sizeof(params) - 1);
	n += 8;
	memcpy(buf + n, params, sizeof(params) - 1);
	n += sizeof(params) - 1;
	memcpy(buf + n, image, sizeof(image));
	n += sizeof(image);
	uint8_t want[32], key[32], k2[32];
	rvi_sha256(buf, n, want);
	rvi_embcache_key(image, sizeof(image), id, params, sizeof(params) - 1, key);
	CHECK(!memcmp(key, want, 32), "key follows the documented construction");

	/* Streaming the image gives the same key. */
	rvi_sha256_ctx c;
	rvi_embcache_key_begin(&c, id, params, sizeof(params) - 1);
	rvi_sha256_update(&c, image, 5);
	rvi_sha256_update(&c, image + 5, sizeof(image) - 5);
	rvi_sha256_final(&c, k2);
	CHECK(!memcmp(key, k2, 32), "streamed key");

	/* Each input changes the key. */
	uint8_t image2[sizeof(image)];
	memcpy(image2, image, sizeof(image));
	image2[sizeof(image) - 1] ^= 0x80;
	rvi_embcache_key(image2, sizeof(image2), id, params, sizeof(params) - 1, k2);
	CHECK(memcmp(key, k2, 32) != 0, "one image bit changes the key");
	rvi_embcache_key(image, sizeof(image), id2, params, sizeof(params) - 1, k2);
	CHECK(memcmp(key, k2, 32) != 0, "the mmproj identity changes the key");
	rvi_embcache_key(image, sizeof(image), id, "exif=0 size=336", sizeof(params) - 1, k2);
	CHECK(memcmp(key, k2, 32) != 0, "the params change the key");
	rvi_embcache_key(image, sizeof(image), id, NULL, 0, k2);
	CHECK(memcmp(key, k2, 32) != 0, "no params differs from params");

	/* The params/image boundary is not ambiguous. */
	uint8_t ka[32], kb[32];
	rvi_embcache_key("c", 1, id, "ab", 2, ka);
	rvi_embcache_key("bc", 2, id, "a", 1, kb);
	CHECK(memcmp(ka, kb, 32) != 0, "params 'ab' + image 'c' vs params 'a' + image 'bc'");

	/* Entry paths. */
	char path[200], hex[65];
	rvi_err err = {0};
	hex_of(key, hex);
	char expect[200];
	snprintf(expect, sizeof(expect), "/some/dir/%s.emb", hex);
	CHECK(rvi_embcache_entry_path("/some/dir", key, path, sizeof(path), &err) == RV_OK, "%s",
	      err.msg);
	CHECK(!strcmp(path, expect), "entry path %s", path);
	CHECK(rvi_embcache_entry_path("/some/dir", key, path, strlen(expect), &err) ==
	          RV_ERR_INVALID_ARG,
	      "entry path one byte too long");
	CHECK(path[0] == 0, "short buffer left empty");
}

/* ---- round trips and plain misses ---------------------------------------- */

static void test_roundtrip(void)
{
	char dir[300];
	make_dir(dir, sizeof(dir), "rt");
	rvi_err err = {0};
	uint8_t key[32], key2[32];
	rvi_sha256("photo-1", 7, key);
	rvi_sha256("photo-2", 7, key2);

	/* Small, with values whose bits must survive: NaN payloads, -0,
	 * infinities, denormals. */
	enum { R = 24, C = 40 };
	float a[R * C], b[R * C];
	fill_random(a, R * C, 7);
	const uint32_t specials[] = {0x7fc00001u, 0xffc12345u, 0x7f800001u, 0x80000000u,
	                             0x7f800000u, 0xff800000u, 0x00000001u, 0x807fffffu};
	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
		memcpy(&a[i * 37], &specials[i], 4);

	CHECK(rvi_embcache_load(dir, key, R, C, b, &err) == RVI_EMBCACHE_MISS, "empty cache");
	CHECK(err.status == RVI_EMBCACHE_MISS && strstr(err.msg, "no entry"), "miss says why: %s",
	      err.msg);
	CHECK(rvi_embcache_store(dir, key, R, C, a, &err) == RV_OK, "store: %s", err.msg);
	memset(b, 0, sizeof(b));
	CHECK(rvi_embcache_load(dir, key, R, C, b, &err) == RV_OK, "load: %s", err.msg);
	CHECK(!memcmp(a, b, sizeof(a)), "bit-exact round trip");

	char path[RVI_EMBCACHE_PATH_MAX];
	rvi_embcache_entry_path(dir, key, path, sizeof(path), &err);
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode), "entry file %s", path);
	CHECK((st.st_mode & 0777) == 0600, "entry mode %o", (unsigned)(st.st_mode & 0777));
	CHECK(count_temp_files(dir) == 0, "no temporary files left");

	/* Misses: another key, other dimensions (also with the same size). */
	CHECK(rvi_embcache_load(dir, key2, R, C, b, &err) == RVI_EMBCACHE_MISS, "other key");
	CHECK(rvi_embcache_load(dir, key, C, R, b, &err) == RVI_EMBCACHE_MISS, "transposed dims");
	CHECK(strstr(err.msg, "dimensions") != NULL, "%s", err.msg);
	CHECK(rvi_embcache_load(dir, key, R + 1, C, b, &err) == RVI_EMBCACHE_MISS, "more rows");
	CHECK(rvi_embcache_load(dir, key, R / 2, C, b, &err) == RVI_EMBCACHE_MISS, "fewer rows");
	/* The entry survives those lookups. */
	CHECK(rvi_embcache_load(dir, key, R, C, b, &err) == RV_OK && !memcmp(a, b, sizeof(a)),
	      "still a hit");

	/* A second store of other values under the same key replaces the
	 * first. */
	fill_random(a, R * C, 8);
	CHECK(rvi_embcache_store(dir, key, R, C, a, &err) == RV_OK, "restore: %s", err.msg);
	CHECK(rvi_embcache_load(dir, key, R, C, b, &err) == RV_OK && !memcmp(a, b, sizeof(a)),
	      "replaced entry");

	/* LLaVA-1.5-7B size: 576 x 4096 floats (9 MiB). */
	enum { LR = 576, LC = 4096 };
	float *big = malloc(sizeof(float) * LR * LC), *big2 = malloc(sizeof(float) * LR * LC);
	fill_random(big, (size_t)LR * LC, 99);
	CHECK(rvi_embcache_store(dir, key2, LR, LC, big, &err) == RV_OK, "store 576x4096: %s",
	      err.msg);
	CHECK(rvi_embcache_load(dir, key2, LR, LC, big2, &err) == RV_OK, "load 576x4096: %s",
	      err.msg);
	CHECK(!memcmp(big, big2, sizeof(float) * LR * LC), "576x4096 bit-exact");
	CHECK(rvi_embcache_load(dir, key2, LR, LC - 1, big2, &err) == RVI_EMBCACHE_MISS,
	      "576x4095");
	free(big);
	free(big2);

	/* Arguments. */
	const int64_t bad[][2] = {
	    {0, C}, {R, 0}, {-1, C}, {R, -5}, {(int64_t)1 << 32, 1}, {1, (int64_t)1 << 40}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(rvi_embcache_load(dir, key, bad[i][0], bad[i][1], b, &err) ==
		          RV_ERR_INVALID_ARG,
		      "load %lld x %lld", (long long)bad[i][0], (long long)bad[i][1]);
		CHECK(rvi_embcache_store(dir, key, bad[i][0], bad[i][1], a, &err) ==
		          RV_ERR_INVALID_ARG,
		      "store %lld x %lld", (long long)bad[i][0], (long long)bad[i][1]);
	}
	CHECK(rvi_embcache_load(NULL, key, R, C, b, &err) == RV_ERR_INVALID_ARG, "NULL dir");
	CHECK(rvi_embcache_load(dir, NULL, R, C, b, &err) == RV_ERR_INVALID_ARG, "NULL key");
	CHECK(rvi_embcache_load(dir, key, R, C, NULL, &err) == RV_ERR_INVALID_ARG, "NULL out");
	CHECK(rvi_embcache_store(dir, key, R, C, NULL, &err) == RV_ERR_INVALID_ARG, "NULL data");
	CHECK(rvi_embcache_load(dir, key, R, C, b, NULL) == RV_OK, "err may be NULL");
}

/* ---- hostile entries ----------------------------------------------------- */

typedef struct {
	char dir[300];
	char path[RVI_EMBCACHE_PATH_MAX];
	uint8_t key[32];
	float a[24 * 40];
	uint8_t *good; /* the stored entry's bytes */
	size_t good_n;
} corrupt_fixture;

enum { CR = 24, CC = 40 };

/* Writes bytes under the entry's name, expects a miss, then a store that
 * rewrites it and a bit-exact hit. */
static void expect_miss_then_rewrite(corrupt_fixture *fx, const void *bytes, size_t n,
                                     const char *what)
{
	rvi_err err = {0};
	float b[CR * CC];
	unlink(fx->path);
	CHECK(write_file(fx->path, bytes, n), "write %s", what);
	/* The right values already in the buffer (a caller reusing it) must
	 * not make a short or failed decompression pass for a hit. */
	memcpy(b, fx->a, sizeof(b));
	int r = rvi_embcache_load(fx->dir, fx->key, CR, CC, b, &err);
	CHECK(r == RVI_EMBCACHE_MISS, "%s: load returned %d (%s)", what, r, err.msg);
	CHECK(rvi_embcache_store(fx->dir, fx->key, CR, CC, fx->a, &err) == RV_OK, "%s: store: %s",
	      what, err.msg);
	memset(b, 0, sizeof(b));
	r = rvi_embcache_load(fx->dir, fx->key, CR, CC, b, &err);
	CHECK(r == RV_OK && !memcmp(b, fx->a, sizeof(b)), "%s: rewritten entry: %d %s", what, r,
	      err.msg);
}

/* An entry written by hand from embcache.h's table: the zlib stream of
 * payload (payload_n bytes) with header fields given explicitly. */
static uint8_t *craft(const uint8_t key[32], uint32_t rows, uint32_t cols, uint64_t raw,
                      uint32_t crc, const void *payload, size_t payload_n, size_t extra_z,
                      int64_t zlen_override, size_t *n_out)
{
	uLongf zn = compressBound((uLong)payload_n);
	uint8_t *f = calloc(1, RVI_EMBCACHE_HEADER_BYTES + zn + extra_z);
	compress2(f + RVI_EMBCACHE_HEADER_BYTES, &zn, payload, (uLong)payload_n, 6);
	memset(f + RVI_EMBCACHE_HEADER_BYTES + zn, 0x5a, extra_z); /* trailing junk */
	uint64_t z = zn + extra_z;
	memcpy(f, "RVEMB", 5);
	f[5] = 1;
	memcpy(f + 8, key, 32);
	put_le32(f + 40, rows);
	put_le32(f + 44, cols);
	put_le64(f + 48, raw);
	put_le32(f + 56, crc);
	put_le64(f + 60, zlen_override >= 0 ? (uint64_t)zlen_override : z);
	*n_out = RVI_EMBCACHE_HEADER_BYTES + z;
	return f;
}

static void test_corrupt(void)
{
	static corrupt_fixture fx;
	rvi_err err = {0};
	make_dir(fx.dir, sizeof(fx.dir), "corrupt");
	rvi_sha256("corrupt", 7, fx.key);
	fill_random(fx.a, CR * CC, 3);
	rvi_embcache_entry_path(fx.dir, fx.key, fx.path, sizeof(fx.path), &err);
	CHECK(rvi_embcache_store(fx.dir, fx.key, CR, CC, fx.a, &err) == RV_OK, "%s", err.msg);
	fx.good = read_all(fx.path, &fx.good_n);
	if (!fx.good || fx.good_n <= RVI_EMBCACHE_HEADER_BYTES + 8) {
		CHECK(0, "cannot read the stored entry");
		free(fx.good);
		return;
	}
	const size_t H = RVI_EMBCACHE_HEADER_BYTES, n = fx.good_n, zn = n - H;
	const uint32_t raw = CR * CC * 4;
	const uint32_t crc = (uint32_t)crc32(0, (const Bytef *)fx.a, raw);
	uint8_t *buf = malloc(n + 16);
	char what[100];

	/* The stored entry is what the documented layout says. */
	CHECK(!memcmp(fx.good, "RVEMB\1\0\0", 8), "magic, version, reserved");
	CHECK(!memcmp(fx.good + 8, fx.key, 32), "key repeated");
	uint8_t hdr[28];
	put_le32(hdr, CR);
	put_le32(hdr + 4, CC);
	put_le64(hdr + 8, raw);
	put_le32(hdr + 16, crc);
	put_le64(hdr + 20, zn);
	CHECK(!memcmp(fx.good + 40, hdr, 28), "rows, cols, size, CRC, compressed size");
	float plain[CR * CC];
	uLongf plain_n = sizeof(plain);
	CHECK(uncompress((Bytef *)plain, &plain_n, fx.good + H, (uLong)zn) == Z_OK &&
	          plain_n == sizeof(plain) && !memcmp(plain, fx.a, sizeof(plain)),
	      "the data is one zlib stream of the floats");

	/* A file crafted by hand from that layout is a hit. */
	size_t cn;
	uint8_t *c = craft(fx.key, CR, CC, raw, crc, fx.a, raw, 0, -1, &cn);
	unlink(fx.path);
	write_file(fx.path, c, cn);
	float b[CR * CC];
	CHECK(rvi_embcache_load(fx.dir, fx.key, CR, CC, b, &err) == RV_OK &&
	          !memcmp(b, fx.a, sizeof(b)),
	      "hand-made entry: %s", err.msg);
	free(c);

	/* Truncated at several lengths. */
	const size_t cuts[] = {0, 1, 5, 8, 40, H - 1, H, H + 1, H + zn / 2, n - 4, n - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		snprintf(what, sizeof(what), "truncated to %zu of %zu bytes", cuts[i], n);
		expect_miss_then_rewrite(&fx, fx.good, cuts[i], what);
	}
	/* One byte too many. */
	memcpy(buf, fx.good, n);
	buf[n] = 0;
	expect_miss_then_rewrite(&fx, buf, n + 1, "one trailing byte");

	/* Every header byte flipped: magic, version, reserved, key, rows, cols,
	 * size, CRC, compressed size. */
	for (size_t i = 0; i < H; i++) {
		memcpy(buf, fx.good, n);
		buf[i] ^= 0xff;
		snprintf(what, sizeof(what), "header byte %zu flipped", i);
		expect_miss_then_rewrite(&fx, buf, n, what);
	}
	/* Single-bit flips in the CRC. */
	for (int bit = 0; bit < 32; bit += 7) {
		memcpy(buf, fx.good, n);
		buf[56 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		snprintf(what, sizeof(what), "CRC bit %d flipped", bit);
		expect_miss_then_rewrite(&fx, buf, n, what);
	}
	/* Bytes of the zlib stream: its header, the deflate data, the
	 * trailing Adler-32. */
	const size_t zpos[] = {0, 1, 2, 3, 10, zn / 3, zn / 2, zn - 5, zn - 4, zn - 1};
	for (size_t i = 0; i < sizeof(zpos) / sizeof(zpos[0]); i++) {
		memcpy(buf, fx.good, n);
		buf[H + zpos[i]] ^= 0xff;
		snprintf(what, sizeof(what), "compressed byte %zu of %zu flipped", zpos[i], zn);
		expect_miss_then_rewrite(&fx, buf, n, what);
	}
	memcpy(buf, fx.good, n);
	memcpy(buf, "RVEMC", 5);
	expect_miss_then_rewrite(&fx, buf, n, "wrong magic");

	/* Headers claiming sizes nothing should allocate. Under ASan an
	 * attempt to allocate them aborts the test; without it, a failed
	 * allocation would be RV_ERR_NOMEM, not a miss. */
	memcpy(buf, fx.good, n);
	put_le32(buf + 40, 0xffffffffu);
	put_le32(buf + 44, 0xffffffffu);
	put_le64(buf + 48, (uint64_t)1 << 40);
	put_le64(buf + 60, (uint64_t)1 << 40);
	expect_miss_then_rewrite(&fx, buf, n, "header claiming 2^40 bytes");
	/* A (sparse) 1 TiB file whose compressed size agrees with its real
	 * size: only the bound from the caller's dimensions stops this one. */
	{
		const uint64_t big = (uint64_t)1 << 40;
		memcpy(buf, fx.good, n);
		put_le64(buf + 60, big - H);
		unlink(fx.path);
		int fd = open(fx.path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		bool made =
		    fd >= 0 && write(fd, buf, n) == (ssize_t)n && ftruncate(fd, (off_t)big) == 0;
		if (fd >= 0)
			close(fd);
		if (made) {
			int r = rvi_embcache_load(fx.dir, fx.key, CR, CC, b, &err);
			CHECK(r == RVI_EMBCACHE_MISS, "sparse 1 TiB entry: %d %s", r, err.msg);
			CHECK(rvi_embcache_store(fx.dir, fx.key, CR, CC, fx.a, &err) == RV_OK, "%s",
			      err.msg);
		} else {
			printf("note: cannot make a sparse 1 TiB file here, check skipped\n");
		}
	}
	memcpy(buf, fx.good, n);
	put_le64(buf + 60, (uint64_t)1 << 62);
	expect_miss_then_rewrite(&fx, buf, n, "compressed size 2^62");
	memcpy(buf, fx.good, n);
	put_le64(buf + 60, UINT64_MAX);
	expect_miss_then_rewrite(&fx, buf, n, "compressed size 2^64-1");
	memcpy(buf, fx.good, n);
	put_le64(buf + 60, zn + 1);
	expect_miss_then_rewrite(&fx, buf, n, "compressed size past EOF");
	memcpy(buf, fx.good, n);
	put_le64(buf + 60, zn - 1);
	expect_miss_then_rewrite(&fx, buf, n, "compressed size short of EOF");
	memcpy(buf, fx.good, n);
	put_le64(buf + 60, 0);
	expect_miss_then_rewrite(&fx, buf, n, "compressed size 0");

	/* Well-formed headers around streams that do not fit the caller:
	 * one float too many or too few, junk after the stream, a CRC that
	 * matches other data. */
	float more[CR * CC + 1];
	memcpy(more, fx.a, sizeof(fx.a));
	more[CR * CC] = 1.0f;
	c = craft(fx.key, CR, CC, raw, crc, more, sizeof(more), 0, -1, &cn);
	expect_miss_then_rewrite(&fx, c, cn, "stream one float too long");
	free(c);
	c = craft(fx.key, CR, CC, raw, crc, fx.a, raw - 4, 0, -1, &cn);
	expect_miss_then_rewrite(&fx, c, cn, "stream one float too short");
	free(c);
	c = craft(fx.key, CR, CC, raw, crc, fx.a, raw, 3, -1, &cn);
	expect_miss_then_rewrite(&fx, c, cn, "junk after the stream");
	free(c);
	float other[CR * CC];
	memcpy(other, fx.a, sizeof(other));
	other[100] = -other[100];
	c = craft(fx.key, CR, CC, raw, crc, other, raw, 0, -1, &cn);
	expect_miss_then_rewrite(&fx, c, cn, "data that fails the CRC");
	free(c);

	/* Foreign files under the entry's name. */
	const char text[] = "this is not an embedding, just a text file that got here\n";
	expect_miss_then_rewrite(&fx, text, sizeof(text) - 1, "text file");
	uint8_t *zeros = calloc(1, n);
	expect_miss_then_rewrite(&fx, zeros, n, "zeros of the right size");
	free(zeros);
	uint8_t key2[32];
	rvi_sha256("another photo", 13, key2);
	float a2[CR * CC];
	fill_random(a2, CR * CC, 4);
	char path2[RVI_EMBCACHE_PATH_MAX];
	rvi_embcache_entry_path(fx.dir, key2, path2, sizeof(path2), &err);
	CHECK(rvi_embcache_store(fx.dir, key2, CR, CC, a2, &err) == RV_OK, "%s", err.msg);
	size_t n2;
	uint8_t *other_entry = read_all(path2, &n2);
	if (other_entry)
		expect_miss_then_rewrite(&fx, other_entry, n2, "another key's entry, renamed");
	free(other_entry);

	/* A FIFO must not block the lookup; a store replaces it. */
	unlink(fx.path);
	CHECK(mkfifo(fx.path, 0600) == 0, "mkfifo: %s", strerror(errno));
	alarm(20); /* a blocking open would hang here: turn that into a failure */
	CHECK(rvi_embcache_load(fx.dir, fx.key, CR, CC, b, &err) == RVI_EMBCACHE_MISS, "FIFO: %s",
	      err.msg);
	alarm(0);
	CHECK(rvi_embcache_store(fx.dir, fx.key, CR, CC, fx.a, &err) == RV_OK, "over FIFO: %s",
	      err.msg);
	CHECK(rvi_embcache_load(fx.dir, fx.key, CR, CC, b, &err) == RV_OK, "after FIFO: %s",
	      err.msg);

	/* A directory under the entry's name: a miss, and a store fails
	 * cleanly (rename cannot replace it) without leaving its temporary
	 * file. */
	unlink(fx.path);
	CHECK(mkdir(fx.path, 0700) == 0, "mkdir: %s", strerror(errno));
	CHECK(rvi_embcache_load(fx.dir, fx.key, CR, CC, b, &err) == RVI_EMBCACHE_MISS,
	      "directory: %s", err.msg);
	CHECK(rvi_embcache_store(fx.dir, fx.key, CR, CC, fx.a, &err) == RV_ERR_IO,
	      "store over a directory");
	CHECK(strstr(err.msg, "rename") != NULL, "message: %s", err.msg);
	CHECK(count_temp_files(fx.dir) == 0, "no temporary file after a failed rename");
	rmdir(fx.path);

	CHECK(count_temp_files(fx.dir) == 0, "no temporary files left");
	free(buf);
	free(fx.good);
}

/* ---- failing stores and unreadable entries ------------------------------- */

static void test_failures(void)
{
	rvi_err err = {0};
	uint8_t key[32];
	rvi_sha256("fail", 4, key);
	float a[16] = {1, 2, 3}, b[16];

	/* A "directory" below a regular file cannot be created or written, even
	 * by root. */
	char file[300], under[400];
	snprintf(file, sizeof(file), "%s/plainfile", root);
	write_file(file, "x", 1);
	snprintf(under, sizeof(under), "%s/sub", file);
	CHECK(rvi_embcache_store(under, key, 4, 4, a, &err) == RV_ERR_IO, "store under a file");
	CHECK(strstr(err.msg, under) != NULL, "message names the directory: %s", err.msg);
	CHECK(rvi_embcache_load(under, key, 4, 4, b, &err) == RV_ERR_IO, "load under a file: %s",
	      err.msg);

	/* A directory that does not exist: store fails, load misses. */
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/does-not-exist", root);
	CHECK(rvi_embcache_store(missing, key, 4, 4, a, &err) == RV_ERR_IO, "store, no dir");
	CHECK(rvi_embcache_load(missing, key, 4, 4, b, &err) == RVI_EMBCACHE_MISS, "load, no dir");

	/* A path too long for the entry name. */
	char *longdir = malloc(RVI_EMBCACHE_PATH_MAX + 10);
	memset(longdir, 'd', RVI_EMBCACHE_PATH_MAX + 9);
	longdir[0] = '/';
	longdir[RVI_EMBCACHE_PATH_MAX + 9] = 0;
	CHECK(rvi_embcache_store(longdir, key, 4, 4, a, &err) == RV_ERR_INVALID_ARG, "long dir");
	CHECK(rvi_embcache_load(longdir, key, 4, 4, b, &err) == RV_ERR_INVALID_ARG, "long dir");
	free(longdir);

	/* Permissions bind everyone but root. */
	if (geteuid() == 0) {
		printf("note: running as root, skipping the read-only directory and unreadable "
		       "entry checks\n");
		return;
	}
	char ro[300];
	make_dir(ro, sizeof(ro), "readonly");
	chmod(ro, 0500);
	CHECK(rvi_embcache_store(ro, key, 4, 4, a, &err) == RV_ERR_IO, "read-only dir");
	CHECK(count_temp_files(ro) == 0, "nothing left in the read-only dir");
	chmod(ro, 0700);
	CHECK(rvi_embcache_store(ro, key, 4, 4, a, &err) == RV_OK, "%s", err.msg);
	char path[RVI_EMBCACHE_PATH_MAX];
	rvi_embcache_entry_path(ro, key, path, sizeof(path), &err);
	chmod(path, 0);
	CHECK(rvi_embcache_load(ro, key, 4, 4, b, &err) == RV_ERR_IO, "unreadable entry: %s",
	      err.msg);
	chmod(path, 0600);
}

/* ---- cache directory ----------------------------------------------------- */

static bool is_dir_with_mode(const char *path, unsigned mode)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == mode;
}

static void test_dir(void)
{
	rvi_err err = {0};
	char out[RVI_EMBCACHE_PATH_MAX], want[600], home[300], xdg[300];
	snprintf(home, sizeof(home), "%s/home", root);
	snprintf(xdg, sizeof(xdg), "%s/xdg/deeper", root);
	setenv("HOME", home, 1);

	/* An absolute XDG_CACHE_HOME wins; missing levels are created 0700. */
	setenv("XDG_CACHE_HOME", xdg, 1);
	CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_OK, "xdg: %s", err.msg);
	snprintf(want, sizeof(want), "%s/rlaifv", xdg);
	CHECK(!strcmp(out, want), "xdg dir %s", out);
	CHECK(is_dir_with_mode(out, 0700), "%s is a 0700 directory", out);
	CHECK(is_dir_with_mode(xdg, 0700), "%s created 0700", xdg);
	/* Again, now that it exists. */
	CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_OK && !strcmp(out, want),
	      "existing: %s", err.msg);
	/* Trailing slashes do not double up. */
	char slashed[320];
	snprintf(slashed, sizeof(slashed), "%s//", xdg);
	setenv("XDG_CACHE_HOME", slashed, 1);
	CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_OK && !strcmp(out, want),
	      "trailing slashes: %s", out);

	/* An existing directory keeps its mode. */
	char pre[300], pre_rl[320];
	snprintf(pre, sizeof(pre), "%s/pre", root);
	snprintf(pre_rl, sizeof(pre_rl), "%s/rlaifv", pre);
	mkdir(pre, 0700);
	mkdir(pre_rl, 0700);
	chmod(pre_rl, 0750);
	setenv("XDG_CACHE_HOME", pre, 1);
	CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_OK && !strcmp(out, pre_rl), "%s",
	      err.msg);
	CHECK(is_dir_with_mode(pre_rl, 0750), "existing mode kept");

	/* Relative, empty or unset XDG_CACHE_HOME: $HOME/.cache/rlaifv. */
	snprintf(want, sizeof(want), "%s/.cache/rlaifv", home);
	const char *ignored[] = {"relative/cache", "./cache", ""};
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		setenv("XDG_CACHE_HOME", ignored[i], 1);
		CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_OK, "'%s': %s", ignored[i],
		      err.msg);
		CHECK(!strcmp(out, want), "XDG_CACHE_HOME='%s' gave %s", ignored[i], out);
	}
	CHECK(is_dir_with_mode(want, 0700), "%s is a 0700 directory", want);
	unsetenv("XDG_CACHE_HOME");
	CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_OK && !strcmp(out, want),
	      "unset XDG_CACHE_HOME gave %s (%s)", out, err.msg);
	struct stat st;
	CHECK(stat("relative", &st) != 0, "no relative directory was created");

	/* The directory returned is usable. */
	uint8_t key[32];
	float a[6] = {1, 2, 3, 4, 5, 6}, b[6];
	rvi_sha256("dir", 3, key);
	CHECK(rvi_embcache_store(out, key, 2, 3, a, &err) == RV_OK, "%s", err.msg);
	CHECK(rvi_embcache_load(out, key, 2, 3, b, &err) == RV_OK && !memcmp(a, b, sizeof(a)),
	      "round trip in the cache dir");

	/* Buffer too small. */
	CHECK(rvi_embcache_dir(out, strlen(want), &err) == RV_ERR_INVALID_ARG, "short buffer");
	CHECK(out[0] == 0, "short buffer left empty");
	CHECK(rvi_embcache_dir(out, strlen(want) + 1, &err) == RV_OK, "exact buffer: %s", err.msg);

	/* No usable variable at all. */
	setenv("HOME", "relative-home", 1);
	CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_ERR_IO, "relative HOME");
	unsetenv("HOME");
	CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_ERR_IO, "no HOME");
	CHECK(out[0] == 0, "out empty on failure");

	/* A directory that cannot be created (below a regular file). */
	char file[300], below[320];
	snprintf(file, sizeof(file), "%s/xdgfile", root);
	write_file(file, "x", 1);
	snprintf(below, sizeof(below), "%s/cache", file);
	setenv("XDG_CACHE_HOME", below, 1);
	CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_ERR_IO, "below a file");
	CHECK(strstr(err.msg, file) != NULL, "message names the path: %s", err.msg);
	CHECK(out[0] == 0, "out empty on failure");
	setenv("XDG_CACHE_HOME", file, 1);
	CHECK(rvi_embcache_dir(out, sizeof(out), &err) == RV_ERR_IO, "XDG_CACHE_HOME is a file");
	unsetenv("XDG_CACHE_HOME");
}

/* ---- concurrency --------------------------------------------------------- */

/* Two writer processes replace one entry over and over with different
 * values while this one reads it: every read must be a hit holding exactly
 * one writer's values, never a miss or a mixture. */
static void test_concurrent(void)
{
	enum { NR = 64, NC = 256, STORES = 150 };
	char dir[300];
	make_dir(dir, sizeof(dir), "concurrent");
	rvi_err err = {0};
	uint8_t key[32];
	rvi_sha256("shared photo", 12, key);
	static float va[NR * NC], vb[NR * NC], got[NR * NC];
	fill_random(va, NR * NC, 11);
	fill_random(vb, NR * NC, 12);
	CHECK(rvi_embcache_store(dir, key, NR, NC, va, &err) == RV_OK, "%s", err.msg);

	pid_t pids[2];
	fflush(stdout); /* or the children inherit, and may print, our buffer */
	for (int w = 0; w < 2; w++) {
		pids[w] = fork();
		if (pids[w] == 0) {
			int bad = 0;
			for (int i = 0; i < STORES; i++)
				bad += rvi_embcache_store(dir, key, NR, NC, w ? vb : va, NULL) !=
				       RV_OK;
			_exit(bad ? 1 : 0);
		}
		CHECK(pids[w] > 0, "fork: %s", strerror(errno));
	}
	int loads = 0, hits_a = 0, hits_b = 0, bad = 0;
	for (int running = 2; running > 0;) {
		int r = rvi_embcache_load(dir, key, NR, NC, got, &err);
		loads++;
		if (r == RV_OK && !memcmp(got, va, sizeof(va)))
			hits_a++;
		else if (r == RV_OK && !memcmp(got, vb, sizeof(vb)))
			hits_b++;
		else if (bad++ == 0)
			fprintf(stderr, "load %d: %d %s\n", loads, r, err.msg);
		running = 0;
		for (int w = 0; w < 2; w++) {
			int st;
			if (pids[w] > 0 && waitpid(pids[w], &st, WNOHANG) == 0)
				running++;
			else if (pids[w] > 0) {
				CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d failed", w);
				pids[w] = -1;
			}
		}
	}
	CHECK(bad == 0, "%d of %d concurrent loads were not an intact entry", bad, loads);
	CHECK(count_temp_files(dir) == 0, "no temporary files after concurrent stores");
	printf("concurrent: %d loads (%d of A, %d of B)\n", loads, hits_a, hits_b);
}

int main(void)
{
	const char *tmpdir = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/rlaifv-embcache-XXXXXX",
	         tmpdir && tmpdir[0] == '/' ? tmpdir : "/tmp");
	if (!mkdtemp(root)) {
		fprintf(stderr, "mkdtemp %s: %s\n", root, strerror(errno));
		return 1;
	}
	/* Relative paths the tests give (a relative XDG_CACHE_HOME that must be
	 * ignored) would land here, not in the source tree, if it were not. */
	if (chdir(root) != 0) {
		fprintf(stderr, "chdir %s: %s\n", root, strerror(errno));
		return 1;
	}
	test_sha256();
	test_key();
	test_roundtrip();
	test_corrupt();
	test_failures();
	test_dir();
	test_concurrent();
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return tu_finish("test_embcache");
}
