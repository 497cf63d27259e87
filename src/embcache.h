/* embcache.h: the image-embedding cache. A second question about the same
 * photo should not run the vision encoder again, so the projector output
 * for (image bytes, mmproj, preprocessing) is kept on disk, zlib-compressed,
 * one file per entry, under $XDG_CACHE_HOME/rlaifv/ (default
 * ~/.cache/rlaifv/).
 *
 * A cache never makes a run fail. Callers treat anything but RV_OK from
 * rvi_embcache_load as "run the encoder", and a failed rvi_embcache_store
 * (read-only directory, full disk) as worth a warning at most. A cache file
 * is never trusted: every field is checked against what the caller expects,
 * the data against a CRC-32, and an entry that fails any check is a miss;
 * the next store replaces it. Sizes in a file never decide an allocation:
 * the caller's expected n_rows x n_cols bounds everything that is read.
 *
 * Key: SHA-256 of
 *     RVI_EMBCACHE_KEY_TAG including its NUL        (versions the key itself)
 *     mmproj_id                           32 bytes  (the caller's hash of the
 *                                                    whole mmproj file:
 *                                                    rvi_vision_mmproj_id)
 *     params_n                            u64 LE
 *     params                              params_n bytes
 *     the image file's bytes              to the end of the message
 * The length prefix keeps params and image apart (params "ab" + image "c"
 * differs from params "a" + image "bc"); the image needs none because it is
 * last, which lets a caller stream it. params must hold everything else
 * that changes the output bits: preprocessing options (EXIF on/off, image
 * size), a version of the encoder code that is bumped whenever its output
 * changes, and the kernel set if outputs must match across ISAs exactly.
 * Hash the bytes that are decoded (read the file once, then hash and
 * decode the same buffer) so the file cannot change in between.
 *
 * Entry: <dir>/<64 hex digits of the key>.emb, little-endian:
 *     offset  size
 *          0     5  magic "RVEMB"
 *          5     1  format version, RVI_EMBCACHE_FORMAT_VERSION
 *          6     2  zero (reserved)
 *          8    32  the key again (a file copied or renamed to another
 *                   entry's name is foreign)
 *         40     4  n_rows (u32)
 *         44     4  n_cols (u32)
 *         48     8  uncompressed byte count = n_rows * n_cols * 4 (u64)
 *         56     4  CRC-32 (zlib's crc32) of the uncompressed bytes
 *         60     8  compressed byte count (u64) = file size - 68
 *         68     -  one zlib stream (RFC 1950) of the n_rows x n_cols f32
 *                   values, row-major, little-endian
 * Every header byte is checked, so no header checksum is needed.
 *
 * Writes are atomic: an entry is written to a temporary file in the same
 * directory (".<hex>.emb.XXXXXX", mode 0600) and renamed over the final
 * name, so a reader, a concurrent run or a crash never sees a half-written
 * entry under the final name; concurrent stores of one key just race to the
 * last rename, each leaving a complete entry. The file is not fsync'ed: a
 * cache needs no durability, and an entry torn by a power loss fails the
 * checks and is a miss. A crash can leave a temporary file behind. Nothing
 * evicts entries (activations compress only about 7%, so a LLaVA-1.5-7B
 * image takes about 8.8 MB): deleting the directory is always safe.
 *
 * No global state; the functions are safe to call from several threads
 * (rvi_embcache_dir reads the environment: not while another thread
 * changes it). */
#ifndef RLAIFV_EMBCACHE_H
#define RLAIFV_EMBCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "src/sha256.h"
#include "src/util.h"

#define RVI_EMBCACHE_KEY_TAG        "rlaifv embcache key v1"
#define RVI_EMBCACHE_FORMAT_VERSION 1
#define RVI_EMBCACHE_HEADER_BYTES   68

/* What rvi_embcache_load returns when there is no usable entry. Positive,
 * so it is neither RV_OK nor any rv_status error. */
#define RVI_EMBCACHE_MISS 1

/* Size of a buffer that holds any entry path rvi_embcache_dir can lead to. */
#define RVI_EMBCACHE_PATH_MAX 4096

/* The cache directory: $XDG_CACHE_HOME/rlaifv when XDG_CACHE_HOME is set to
 * an absolute path (the XDG spec says to ignore a relative one), otherwise
 * $HOME/.cache/rlaifv ($HOME must be absolute). Missing directories are
 * created mkdir -p style with mode 0700 (XDG spec); existing ones are left
 * as they are. Writes the path, without a trailing slash, to out (cap
 * bytes). RV_ERR_IO when neither variable gives a path or a directory cannot
 * be created (the message names it), RV_ERR_INVALID_ARG when the path does
 * not fit in cap; out is then "". */
int rvi_embcache_dir(char *out, size_t cap, rvi_err *err);

/* The key of an image (see above), at once or in pieces: key_begin hashes
 * what comes before the image into c; the caller then feeds the image bytes
 * with rvi_sha256_update and takes the key with rvi_sha256_final. params
 * may be NULL when params_n is 0; so may image when image_n is 0. */
void rvi_embcache_key_begin(rvi_sha256_ctx *c, const uint8_t mmproj_id[RVI_SHA256_BYTES],
                            const void *params, size_t params_n);
void rvi_embcache_key(const void *image, size_t image_n, const uint8_t mmproj_id[RVI_SHA256_BYTES],
                      const void *params, size_t params_n, uint8_t key[RVI_SHA256_BYTES]);

/* The entry's path, dir + "/" + hex(key) + ".emb", into out (cap bytes).
 * RV_ERR_INVALID_ARG when it does not fit. */
int rvi_embcache_entry_path(const char *dir, const uint8_t key[RVI_SHA256_BYTES], char *out,
                            size_t cap, rvi_err *err);

/* Looks up key in dir expecting n_rows x n_cols floats.
 *   RV_OK              a hit: out (n_rows * n_cols floats) holds the values
 *                      bit for bit as stored.
 *   RVI_EMBCACHE_MISS  no entry, or one that is truncated, corrupt, of
 *                      another format version, for another key or of other
 *                      dimensions, or not a regular file. err says which
 *                      (for a verbose log); the entry is left for the next
 *                      store to replace (deleting it here could delete a
 *                      good entry that a concurrent run just renamed in).
 *   < 0                the cache could not be consulted for a reason worth a
 *                      warning: RV_ERR_INVALID_ARG (bad arguments, n_rows or
 *                      n_cols outside 1..UINT32_MAX, a path too long),
 *                      RV_ERR_IO (the entry exists but cannot be opened or
 *                      read, e.g. permissions), RV_ERR_NOMEM.
 * Unless RV_OK, out's content is unspecified (the data is decompressed in
 * place before the CRC is checked). Never allocates more than
 * compressBound(n_rows * n_cols * 4) bytes, whatever the file says. */
int rvi_embcache_load(const char *dir, const uint8_t key[RVI_SHA256_BYTES], int64_t n_rows,
                      int64_t n_cols, float *out, rvi_err *err);

/* Stores n_rows x n_cols floats (row-major) under key in dir, which must
 * exist (see rvi_embcache_dir), replacing any entry atomically. RV_OK, or
 * RV_ERR_IO (cannot create, write or rename the file: the message names the
 * path and the reason; no temporary file is left), RV_ERR_INVALID_ARG,
 * RV_ERR_NOMEM. */
int rvi_embcache_store(const char *dir, const uint8_t key[RVI_SHA256_BYTES], int64_t n_rows,
                       int64_t n_cols, const float *data, rvi_err *err);

#endif
