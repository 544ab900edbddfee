// SPDX-License-Identifier: MIT
/*
 * What a 64-bit Mach-O file, or an archive of them, needs from outside,
 * without macOS's tools (tests/darwin/check-macho.sh):
 *
 *   macho-imports FILE
 *
 * prints one line per fact, sorted by the caller:
 *   import NAME       an undefined external symbol (an archive's: one that
 *                     no member of it defines); "weak-import NAME" if weak
 *   dylib PATH        a library it loads (executables)
 *   minos X.Y         the oldest macOS it is built for (LC_BUILD_VERSION,
 *                     or LC_VERSION_MIN_MACOSX)
 * Exits 1 if the file is neither, 2 on a usage or read error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MH_MAGIC_64 0xfeedfacfu
#define LC_SYMTAB 0x2u
#define LC_LOAD_DYLIB 0xcu
#define LC_VERSION_MIN_MACOSX 0x24u
#define LC_BUILD_VERSION 0x32u
#define LC_REQ_DYLD 0x80000000u
#define N_STAB 0xe0u
#define N_TYPE 0x0eu
#define N_EXT 0x01u
#define N_UNDF 0x0u
#define N_SECT 0xeu
#define N_WEAK_REF 0x0040u

/* Names point into the file, read whole and kept to the end. */
struct names {
	const char **v;
	size_t n, cap;
};

static struct names defined, undefined, weak;

static void add(struct names *s, const char *name)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			exit(2);
	}
	s->v[s->n++] = name;
}

static bool has(const struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], name))
			return true;
	return false;
}

static uint32_t u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One Mach-O image, `len` bytes at p: 0, or -1 if it is not one. */
static int image(const uint8_t *p, size_t len)
{
	uint32_t ncmds, off = 32;

	if (len < 32 || u32(p) != MH_MAGIC_64)
		return -1;
	ncmds = u32(p + 16);
	for (uint32_t i = 0; i < ncmds; i++) {
		uint32_t cmd, size;

		if (off + 8 > len)
			return -1;
		cmd = u32(p + off);
		size = u32(p + off + 4);
		if (size < 8 || off + size > len)
			return -1;
		if (cmd == LC_SYMTAB && size >= 24) {
			uint32_t symoff = u32(p + off + 8), nsyms = u32(p + off + 12);
			uint32_t stroff = u32(p + off + 16), strsize = u32(p + off + 20);

			if ((uint64_t)symoff + (uint64_t)nsyms * 16 > len ||
			    (uint64_t)stroff + strsize > len)
				return -1;
			for (uint32_t k = 0; k < nsyms; k++) {
				const uint8_t *n = p + symoff + 16 * k;
				uint32_t strx = u32(n);
				uint8_t type = n[4];
				uint16_t desc = (uint16_t)(n[6] | n[7] << 8);
				const char *name = (const char *)p + stroff + strx;

				if (strx >= strsize || (type & N_STAB) || !(type & N_EXT) ||
				    !memchr(name, 0, strsize - strx))
					continue;
				if ((type & N_TYPE) == N_SECT)
					add(&defined, name);
				else if ((type & N_TYPE) == N_UNDF)
					add(desc & N_WEAK_REF ? &weak : &undefined, name);
			}
		} else if ((cmd & ~LC_REQ_DYLD) == LC_LOAD_DYLIB || cmd == (0x18u | LC_REQ_DYLD) ||
			   cmd == (0x1fu | LC_REQ_DYLD) || cmd == (0x23u | LC_REQ_DYLD)) {
			uint32_t name = u32(p + off + 8);

			if (name < size && memchr(p + off + name, 0, size - name))
				printf("dylib %s\n", (const char *)p + off + name);
		} else if (cmd == LC_BUILD_VERSION || cmd == LC_VERSION_MIN_MACOSX) {
			uint32_t v = u32(p + off + (cmd == LC_BUILD_VERSION ? 12 : 8));

			printf("minos %u.%u\n", v >> 16, (v >> 8) & 0xff);
		}
		off += size;
	}
	return 0;
}

/* An ar archive (BSD names, as zig ar --format=darwin writes): each member. */
static int archive(const uint8_t *p, size_t len)
{
	size_t off = 8;
	int n = 0;

	while (off + 60 <= len) {
		const char *h = (const char *)p + off;
		size_t size = (size_t)strtoul(h + 48, NULL, 10), skip = 0;

		if (off + 60 + size > len)
			return -1;
		if (!strncmp(h, "#1/", 3))
			skip = (size_t)strtoul(h + 3, NULL, 10);
		if (skip > size)
			return -1;
		if (strncmp((const char *)p + off + 60, "__.SYMDEF", skip < 9 ? skip : 9) || !skip) {
			if (image(p + off + 60 + skip, size - skip) == 0)
				n++;
		}
		off += 60 + size + (size & 1);
	}
	return n ? 0 : -1;
}

int main(int argc, char **argv)
{
	uint8_t *buf;
	long len;
	FILE *f;
	int err;

	if (argc != 2 || !(f = fopen(argv[1], "rb"))) {
		fprintf(stderr, "usage: macho-imports FILE\n");
		return 2;
	}
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
	    !(buf = malloc((size_t)len + 1)) || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "macho-imports: cannot read %s\n", argv[1]);
		return 2;
	}
	fclose(f);
	if ((size_t)len >= 8 && !memcmp(buf, "!<arch>\n", 8))
		err = archive(buf, (size_t)len);
	else
		err = image(buf, (size_t)len);
	if (err) {
		fprintf(stderr, "macho-imports: %s: not a 64-bit Mach-O file or archive\n", argv[1]);
		return 1;
	}
	for (size_t i = 0; i < undefined.n; i++)
		if (!has(&defined, undefined.v[i]))
			printf("import %s\n", undefined.v[i]);
	for (size_t i = 0; i < weak.n; i++)
		if (!has(&defined, weak.v[i]))
			printf("weak-import %s\n", weak.v[i]);
	return 0;
}
