// SPDX-License-Identifier: MIT
/* Percentiles and output formats; see stats.h. */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them at or below. */
static uint64_t rank(const uint32_t *s, size_t n, double p)
{
	size_t k = (size_t)((double)n * p + 0.999999999);

	if (k == 0)
		k = 1;
	if (k > n)
		k = n;
	return s[k - 1];
}

void stats_summarize(uint32_t *samples, size_t n, struct lat_summary *out)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (!n)
		return;
	qsort(samples, n, sizeof(*samples), cmp_u32);
	for (size_t i = 0; i < n; i++)
		sum += samples[i];
	out->n = n;
	out->min = samples[0];
	out->max = samples[n - 1];
	out->p50 = rank(samples, n, 0.50);
	out->p90 = rank(samples, n, 0.90);
	out->p99 = rank(samples, n, 0.99);
	out->p999 = rank(samples, n, 0.999);
	out->mean = sum / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double stats_median(double *v, size_t n, double *lo, double *hi)
{
	*lo = *hi = 0;
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	*lo = v[0];
	*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

const char *stats_rate(char *buf, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.0f", v);
	return buf;
}

static const char *ratio(char *buf, size_t len, double v)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, v >= 100 ? "%.0fx" : "%.2fx", v); /* sleepers over the floor */
	return buf;
}

void stats_table_header(FILE *f)
{
	fprintf(f, "%-13s %-8s %-8s %5s %6s %7s %9s %7s %7s %8s %8s %6s %6s %7s %4s\n",
		"transport", "mode", "api", "lanes", "urgent", "payload", "msgs/s", "p50 ns", "p99 ns",
		"p99.9 ns", "verified", "x tput", "x p50", "x floor", "cpu");
}

void stats_table_row(FILE *f, const struct bench_row *r)
{
	char a[32], b[32], c[32], e[32], d[16], u[16];

	if (r->cpu_share < 0)
		snprintf(d, sizeof(d), "-");
	else
		snprintf(d, sizeof(d), "%.0f%%", r->cpu_share * 100);
	/* How often a three-lane reader looks at its more urgent lanes. */
	if (r->lanes < 3)
		snprintf(u, sizeof(u), "-");
	else if (r->urgent_every > 1)
		snprintf(u, sizeof(u), "1/%u", r->urgent_every);
	else
		snprintf(u, sizeof(u), "every");
	fprintf(f, "%-13s %-8s %-8s %5u %6s %7u %9s %7llu %7llu %8llu %8s %6s %6s %7s %4s\n",
		r->transport, r->mode, r->api, r->lanes, u, r->payload,
		stats_rate(a, sizeof(a), r->msgs_per_s),
		(unsigned long long)r->rtt.p50, (unsigned long long)r->rtt.p99,
		(unsigned long long)r->rtt.p999, r->verified ? "yes" : "NO",
		ratio(b, sizeof(b), r->ratio_tput), ratio(c, sizeof(c), r->ratio_p50),
		ratio(e, sizeof(e), r->floor_ratio), d);
	if (r->limit_per_s > 0)
		fprintf(f, "  ^ the consumer's own limit %s/s, delivered %.0f%% of it; cpu: the producer's\n",
			stats_rate(a, sizeof(a), r->limit_per_s), 100 * r->msgs_per_s / r->limit_per_s);
	if (r->error)
		fprintf(f, "  ^ %s\n", r->error);
	fflush(f);
}

void stats_json_str(FILE *f, const char *key, const char *s)
{
	fprintf(f, "\"%s\":\"", key);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, const char *key, double v)
{
	if (v < 0)
		fprintf(f, ",\"%s\":null", key);
	else
		fprintf(f, ",\"%s\":%.4g", key, v);
}

void stats_json_row(FILE *f, const struct bench_row *r)
{
	fputc('{', f);
	stats_json_str(f, "bench", r->bench);
	fputc(',', f);
	stats_json_str(f, "transport", r->transport);
	fputc(',', f);
	stats_json_str(f, "mode", r->mode);
	fputc(',', f);
	stats_json_str(f, "api", r->api);
	fputc(',', f);
	stats_json_str(f, "backend", r->backend);
	fprintf(f, ",\"payload\":%u,\"lanes\":%u,\"urgent_every\":%u,\"msgs\":%llu,\"rounds\":%u,"
		"\"msgs_per_s\":%.0f,\"msgs_per_s_min\":%.0f,\"msgs_per_s_max\":%.0f",
		r->payload, r->lanes, r->urgent_every, (unsigned long long)r->msgs, r->rounds, r->msgs_per_s,
		r->msgs_per_s_min, r->msgs_per_s_max);
	fprintf(f, ",\"samples\":%llu,\"rtt_min_ns\":%llu,\"rtt_p50_ns\":%llu,"
		"\"rtt_p90_ns\":%llu,\"rtt_p99_ns\":%llu,\"rtt_p999_ns\":%llu,"
		"\"rtt_max_ns\":%llu,\"rtt_mean_ns\":%.1f",
		(unsigned long long)r->rtt.n, (unsigned long long)r->rtt.min,
		(unsigned long long)r->rtt.p50, (unsigned long long)r->rtt.p90,
		(unsigned long long)r->rtt.p99, (unsigned long long)r->rtt.p999,
		(unsigned long long)r->rtt.max, r->rtt.mean);
	if (r->round_rates && r->rounds) {
		fprintf(f, ",\"round_msgs_per_s\":[");
		for (unsigned i = 0; i < r->rounds; i++)
			fprintf(f, "%s%.0f", i ? "," : "", r->round_rates[i]);
		fputc(']', f);
	}
	json_num(f, "ratio_tput", r->ratio_tput);
	json_num(f, "ratio_p50", r->ratio_p50);
	json_num(f, "floor_ratio", r->floor_ratio);
	fprintf(f, ",\"ring_bytes\":%zu", r->ring_bytes);
	json_num(f, "cpu_share", r->cpu_share);
	json_num(f, "consumer_limit_per_s", r->limit_per_s > 0 ? r->limit_per_s : -1);
	fprintf(f, ",\"preempted\":%llu", (unsigned long long)r->preempted);
	if (r->cpu[0] >= 0)
		fprintf(f, ",\"cpus\":[%d,%d],\"pinned\":true", r->cpu[0], r->cpu[1]);
	else
		fprintf(f, ",\"cpus\":null,\"pinned\":false");
	fprintf(f, ",\"verified\":%s", r->verified ? "true" : "false");
	if (r->error) {
		fputc(',', f);
		stats_json_str(f, "error", r->error);
	}
	fputs("}\n", f);
	fflush(f);
}
