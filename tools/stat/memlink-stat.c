// SPDX-License-Identifier: MIT
/*
 * memlink-stat: what channels exist here and how they are doing.
 *
 *   memlink-stat [--backend B] [--json] [--watch [SECONDS]] [NAME...]
 *   memlink-stat [--backend B] --gc [NAME...]
 *   memlink-stat --regions [--json]
 *
 * Without names, every channel the backend can list (the module's listing,
 * the linux daemons' listening sockets, or the darwin lock files). For
 * each: size, backend, the daemon's pid and whether it is alive, clients,
 * backpressure, heartbeat age, the daemon's uid; then one line per client
 * slot in use with its uid and pid as the kernel reported them (where the
 * backend knows them), per-lane fill levels and lanes whose indices are
 * corrupt. A topic (ml_pub(3)) says "topic lossy" or "topic reliable",
 * and each subscriber's line its lag (how much of each lane it has still
 * to read) and the records it lost. --json prints one JSON object per
 * channel per line. --gc
 * removes what dead daemons left behind (darwin: objects and lock files;
 * linux and kmod leave nothing) and says how many. --regions lists the
 * module's regions instead, as ipcs(1) does (regions.c). Exit status: 0, 1
 * if a named channel could not be read, 2 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memlink.h"
#include "stat.h"

struct cfg {
	unsigned backend;
	bool json;
	int failed;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static const char *daemon_state(uint32_t s)
{
	return s == 0 ? "starting" : s == 1 ? "running" : s == 2 ? "shut down" : "?";
}

static const char *slot_state(uint32_t s)
{
	static const char *const names[] = { "free", "connecting", "connected", "leaving" };

	return s < 4 ? names[s] : "?";
}

static const char *alive_word(int alive)
{
	return alive == 1 ? "alive" : alive == 0 ? "DEAD" : "unknown";
}

static const char *json_bool(int alive)
{
	return alive == 1 ? "true" : alive == 0 ? "false" : "null";
}

/* "12 ms", "3.4 s", or "-" for no heartbeat. */
static void fmt_age(char *buf, size_t len, int64_t ns)
{
	if (ns < 0)
		snprintf(buf, len, "-");
	else if (ns < 10000000000ll)
		snprintf(buf, len, "%lld ms", (long long)(ns / 1000000));
	else
		snprintf(buf, len, "%.0f s", (double)ns / 1e9);
}

static void fmt_size(char *buf, size_t len, uint64_t b)
{
	if (b >= (1u << 20))
		snprintf(buf, len, "%.1f MiB", (double)b / (1 << 20));
	else
		snprintf(buf, len, "%.1f KiB", (double)b / 1024);
}

/* Three lanes' fill, "C 0% H 12% L 100%"; corrupt lanes say so. */
static void fmt_lanes(char *buf, size_t len, const uint32_t *used, const uint32_t *cap,
		      unsigned bad)
{
	static const char tag[] = "CHL";
	size_t n = 0;

	for (unsigned l = 0; l < ML_PRIO_COUNT && n < len; l++) {
		if (bad & (1u << l))
			n += (size_t)snprintf(buf + n, len - n, "%s%c CORRUPT", l ? " " : "", tag[l]);
		else
			n += (size_t)snprintf(buf + n, len - n, "%s%c %u%%", l ? " " : "", tag[l],
					      cap[l] ? (unsigned)(100ull * used[l] / cap[l]) : 0);
	}
}

/* "uid 1000 kpid 4242 " from the kernel's word on a client; "" where it has none. */
static void fmt_cred(char *buf, size_t len, uint32_t uid, uint32_t kpid)
{
	char u[24] = "", p[24] = "";

	if (uid != ML_CHAN_NOBODY)
		snprintf(u, sizeof(u), "uid %-6u ", uid);
	if (kpid != ML_CHAN_NOBODY)
		snprintf(p, sizeof(p), "kpid %-7u ", kpid);
	snprintf(buf, len, "%s%s", u, p);
}

static void print_text(const struct ml_chan_status *st)
{
	char size[32], age[32], daemon[48], uid[16] = "-", cred[48];

	fmt_size(size, sizeof(size), st->region_size);
	fmt_age(age, sizeof(age), st->beat_age_ns);
	snprintf(daemon, sizeof(daemon), "%u %s %s", st->daemon_pid,
		 alive_word(st->daemon_alive), daemon_state(st->daemon_state));
	if (st->daemon_uid != ML_CHAN_NOBODY)
		snprintf(uid, sizeof(uid), "%u", st->daemon_uid);
	printf("%-24s %-7s %10s  %-26s %3u/%-3u %5.2f  %8s  %s%s\n", st->name, st->backend, size,
	       daemon, st->clients, st->max_clients, st->backpressure, age, uid,
	       st->kind != ML_CHAN_KIND_TOPIC ? "" :
	       st->topic_policy == ML_TOPIC_RELIABLE ? "  topic reliable" : "  topic lossy");
	for (unsigned i = 0; i < st->max_clients && i < ML_CHAN_MAX_CLIENTS; i++) {
		const struct ml_chan_client_status *c = &st->client[i];
		char req[64], resp[64];

		if (c->state == 0)
			continue;
		fmt_age(age, sizeof(age), c->beat_age_ns);
		fmt_lanes(req, sizeof(req), c->req_used, c->req_cap, c->corrupt & 7);
		fmt_lanes(resp, sizeof(resp), c->resp_used, c->resp_cap, c->corrupt >> 3);
		fmt_cred(cred, sizeof(cred), st->client_uid[i], st->client_kpid[i]);
		/* A topic's subscriber: how far behind it is, and what it lost. */
		if (st->kind == ML_CHAN_KIND_TOPIC) {
			printf("  sub %-2u %-10s pid %-7u %s%-7s beat %-7s lag %s  lost %llu\n", i,
			       slot_state(c->state), c->pid, cred, alive_word(c->alive), age, resp,
			       (unsigned long long)st->sub_lost[i]);
			continue;
		}
		printf("  client %-2u %-10s pid %-7u %s%-7s beat %-7s req %s  resp %s\n", i,
		       slot_state(c->state), c->pid, cred, alive_word(c->alive), age, req, resp);
	}
}

/* ,"key":N, nothing where the backend cannot tell (ML_CHAN_NOBODY). */
static void json_id(const char *key, uint32_t v)
{
	if (v != ML_CHAN_NOBODY)
		printf(",\"%s\":%u", key, v);
}

static void json_lanes(const char *key, const uint32_t *v)
{
	printf(",\"%s\":[%u,%u,%u]", key, v[0], v[1], v[2]);
}

/* Milliseconds, or null for none. */
static void json_age(const char *key, int64_t ns)
{
	if (ns < 0)
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%.3f", key, (double)ns / 1e6);
}

static void print_json(const struct ml_chan_status *st)
{
	bool first = true;

	/* Channel names are [A-Za-z0-9._-]: nothing to escape. */
	printf("{\"name\":\"%s\",\"backend\":\"%s\",\"region_size\":%llu,"
	       "\"daemon_pid\":%u,\"daemon_alive\":%s,\"daemon_state\":\"%s\"",
	       st->name, st->backend, (unsigned long long)st->region_size, st->daemon_pid,
	       json_bool(st->daemon_alive), daemon_state(st->daemon_state));
	json_id("daemon_uid", st->daemon_uid);
	json_age("heartbeat_age_ms", st->beat_age_ns);
	if (st->kind == ML_CHAN_KIND_TOPIC)
		printf(",\"kind\":\"topic\",\"policy\":\"%s\"",
		       st->topic_policy == ML_TOPIC_RELIABLE ? "reliable" : "lossy");
	else
		printf(",\"kind\":\"channel\"");
	printf(",\"clients\":%u,\"max_clients\":%u,\"ring_size\":%u,\"max_msg\":%u,"
	       "\"backpressure\":%.4f,\"slots\":[",
	       st->clients, st->max_clients, st->ring_size, st->max_msg, st->backpressure);
	for (unsigned i = 0; i < st->max_clients && i < ML_CHAN_MAX_CLIENTS; i++) {
		const struct ml_chan_client_status *c = &st->client[i];

		if (c->state == 0)
			continue;
		printf("%s{\"slot\":%u,\"state\":\"%s\",\"pid\":%u,\"alive\":%s", first ? "" : ",",
		       i, slot_state(c->state), c->pid, json_bool(c->alive));
		json_id("uid", st->client_uid[i]);
		json_id("kpid", st->client_kpid[i]);
		json_age("heartbeat_age_ms", c->beat_age_ns);
		if (st->kind == ML_CHAN_KIND_TOPIC) {
			json_lanes("lag", c->resp_used);
			json_lanes("lane_cap", c->resp_cap);
			printf(",\"lost\":%llu}", (unsigned long long)st->sub_lost[i]);
			first = false;
			continue;
		}
		json_lanes("req_used", c->req_used);
		json_lanes("req_cap", c->req_cap);
		json_lanes("resp_used", c->resp_used);
		json_lanes("resp_cap", c->resp_cap);
		printf(",\"corrupt_req_lanes\":%u,\"corrupt_resp_lanes\":%u}", c->corrupt & 7,
		       c->corrupt >> 3);
		first = false;
	}
	printf("]}\n");
}

static int show(const char *name, void *arg)
{
	struct cfg *cfg = arg;
	struct ml_chan_status *st = calloc(1, sizeof(*st));
	int err;

	if (!st)
		return -ENOMEM;
	st->size = sizeof(*st);
	/* Unknown unless the library says (one that predates them leaves them). */
	st->daemon_uid = st->daemon_kpid = ML_CHAN_NOBODY;
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		st->client_uid[i] = st->client_kpid[i] = ML_CHAN_NOBODY;
	err = ml_chan_inspect(name, cfg->backend, st);
	if (err == -EPIPE) {
		/* The module lets no one in once the daemon is gone. */
		if (cfg->json)
			printf("{\"name\":\"%s\",\"daemon_alive\":false,\"error\":\"%s\"}\n",
			       name, ml_strerror(err));
		else
			printf("%-24s daemon DEAD; kept for its clients until they leave\n", name);
	} else if (err) {
		if (cfg->json)
			printf("{\"name\":\"%s\",\"error\":\"%s\"}\n", name, ml_strerror(err));
		else
			printf("%-24s %s\n", name, ml_strerror(err));
		cfg->failed = 1;
	} else if (cfg->json) {
		print_json(st);
	} else {
		print_text(st);
	}
	free(st);
	return 0;
}

static int show_all(struct cfg *cfg, char **names, int n)
{
	int err = 0;

	if (!cfg->json)
		printf("%-24s %-7s %10s  %-26s %7s %5s  %8s  %s\n", "CHANNEL", "BACKEND", "SIZE",
		       "DAEMON", "CLIENTS", "BP", "BEAT", "UID");
	if (n)
		for (int i = 0; i < n; i++)
			show(names[i], cfg);
	else
		err = ml_chan_list(cfg->backend, show, cfg);
	if (err < 0)
		fprintf(stderr, "memlink-stat: cannot list channels: %s\n", ml_strerror(err));
	fflush(stdout);
	return err < 0 ? 1 : cfg->failed;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: memlink-stat [--backend kmod|linux|win|darwin] [--json] "
		   "[--watch [SECONDS]] [NAME...]\n"
		   "       memlink-stat [--backend ...] --gc [NAME...]\n"
		   "       memlink-stat --regions [--json]\n");
}

static int parse_backend(const char *s, unsigned *out)
{
	static const char *const names[] = { "auto", "kmod", "linux", "win", "darwin" };

	for (unsigned i = 0; i < 5; i++)
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "backend", required_argument, NULL, 'b' }, { "json", no_argument, NULL, 'j' },
		{ "watch", optional_argument, NULL, 'w' },   { "gc", no_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },          { "regions", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct cfg cfg = { 0 };
	double watch = 0;
	bool gc = false, regions = false;
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'b':
			if (parse_backend(optarg, &cfg.backend))
				return usage(stderr), 2;
			break;
		case 'j':
			cfg.json = true;
			break;
		case 'w':
			watch = optarg ? strtod(optarg, NULL) : 1.0;
			if (watch <= 0)
				return usage(stderr), 2;
			break;
		case 'g':
			gc = true;
			break;
		case 'r':
			regions = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (regions)
		return optind < argc || gc || watch ? (usage(stderr), 2) : ml_stat_regions(cfg.json);
	if (gc) {
		int removed = 0;

		for (int i = optind; i < argc || (i == optind && optind == argc); i++) {
			int n = ml_chan_gc(i < argc ? argv[i] : NULL, cfg.backend);

			if (n < 0) {
				fprintf(stderr, "memlink-stat: gc %s: %s\n",
					i < argc ? argv[i] : "", ml_strerror(n));
				return 1;
			}
			removed += n;
		}
		printf("memlink-stat: removed %d dead channel%s\n", removed, removed == 1 ? "" : "s");
		return 0;
	}
	if (!watch)
		return show_all(&cfg, argv + optind, argc - optind);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	do {
		struct timespec ts = { (time_t)watch, (long)((watch - (time_t)watch) * 1e9) };

		cfg.failed = 0;
		if (!cfg.json)
			printf("\033[H\033[2J"); /* home, clear: a fresh screen each time */
		ret = show_all(&cfg, argv + optind, argc - optind);
		nanosleep(&ts, NULL);
	} while (!interrupted);
	return ret;
}
