// SPDX-License-Identifier: MIT
/*
 * Channel tests: 4 and 8 clients, each sending CHAN_MSGS messages of mixed
 * sizes and priorities to one daemon; per-lane order and checksums
 * verified.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"

/* A request: this header, then body bytes from (seed, client, lane, seq). */
struct req_hdr {
	uint32_t client;
	uint32_t lane;
	uint64_t seq;
	uint32_t len;
	uint32_t sum;
};

/* A reply: what the daemon saw, then filler to a length keyed by seq. */
struct rep_hdr {
	uint64_t seq;
	uint32_t lane;
	uint32_t sum;
};

#define WINDOW 65536u /* replies a client can be owed per lane */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint32_t body_sum(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

static uint32_t stress_len(uint64_t seed, unsigned client, unsigned lane, uint64_t seq,
			   uint32_t max_msg)
{
	uint64_t h = mix(seed ^ ((uint64_t)client << 40) ^ ((uint64_t)lane << 56) ^ (seq * 3));
	uint32_t min = sizeof(struct req_hdr);

	if ((h & 15) == 0) /* 1 in 16 anywhere up to the largest */
		return min + (uint32_t)((h >> 8) % (max_msg - min + 1));
	return min + (uint32_t)((h >> 8) % 233);
}

/* Role "stress-client NAME INDEX MSGS SEED": send, check every reply. */
int role_stress_client(int argc, char **argv)
{
	static unsigned char msg[65536], buf[65536];
	static uint32_t sums[ML_PRIO_COUNT][WINDOW];
	uint64_t sent[ML_PRIO_COUNT] = { 0 }, rcvd[ML_PRIO_COUNT] = { 0 };
	uint64_t n_sent = 0, n_rcvd = 0, msgs, seed;
	int64_t last_progress;
	unsigned idx, lane = 0;
	bool pending = false;
	ml_chan *c = NULL;
	int err, ret = 1;

	if (argc < 4)
		return 2;
	idx = (unsigned)atoi(argv[1]);
	msgs = strtoull(argv[2], NULL, 0);
	seed = strtoull(argv[3], NULL, 0);
	err = connect_retry(&c, argv[0], 10 * SEC, -ENOENT);
	if (err) {
		fprintf(stderr, "stress-client %u: connect: %s\n", idx, ml_strerror(err));
		return 1;
	}
	last_progress = now_ns();
	while (n_sent < msgs || n_rcvd < msgs) {
		bool progress = false;
		int n, p;

		/* Build the next request once; send it when there is room. */
		if (n_sent < msgs && !pending) {
			struct req_hdr h;
			uint64_t x;

			lane = (unsigned)(mix(seed ^ ((uint64_t)idx << 48) ^ n_sent) % ML_PRIO_COUNT);
			h.client = idx;
			h.lane = lane;
			h.seq = sent[lane];
			h.len = stress_len(seed, idx, lane, h.seq, 4096);
			x = mix(seed + ((uint64_t)idx << 40) + ((uint64_t)lane << 56) + h.seq);
			for (uint32_t i = sizeof(h); i < h.len; i += 8) {
				x = mix(x);
				memcpy(msg + i, &x, h.len - i < 8 ? h.len - i : 8);
			}
			h.sum = body_sum(msg + sizeof(h), h.len - sizeof(h));
			memcpy(msg, &h, sizeof(h));
			pending = true;
		}
		if (pending && sent[lane] - rcvd[lane] < WINDOW) {
			struct req_hdr h;

			memcpy(&h, msg, sizeof(h));
			err = ml_chan_send(c, (int)lane, msg, h.len);
			if (!err) {
				sums[lane][h.seq % WINDOW] = h.sum;
				sent[lane]++;
				n_sent++;
				pending = false;
				progress = true;
			} else if (err != -EAGAIN) {
				fprintf(stderr, "stress-client %u: send %llu: %s\n", idx,
					(unsigned long long)n_sent, ml_strerror(err));
				goto out;
			}
		}
		while ((n = ml_chan_recv(c, &p, NULL, buf, sizeof(buf))) >= 0) {
			struct rep_hdr r;
			uint32_t want_len;

			if ((size_t)n < sizeof(r) || p < 0 || p >= ML_PRIO_COUNT) {
				fprintf(stderr, "stress-client %u: bad reply (len %d, prio %d)\n", idx,
					n, p);
				goto out;
			}
			memcpy(&r, buf, sizeof(r));
			want_len = (uint32_t)(sizeof(r) + r.seq % 49);
			if (r.lane != (uint32_t)p || r.seq != rcvd[p] || rcvd[p] >= sent[p] ||
			    r.sum != sums[p][r.seq % WINDOW] || (uint32_t)n != want_len) {
				fprintf(stderr,
					"stress-client %u: reply prio %d: seq %llu lane %u sum %08x len %d, want seq %llu sum %08x len %u\n",
					idx, p, (unsigned long long)r.seq, r.lane, r.sum, n,
					(unsigned long long)rcvd[p], sums[p][rcvd[p] % WINDOW], want_len);
				goto out;
			}
			for (int i = (int)sizeof(r); i < n; i++)
				if (buf[i] != (unsigned char)(r.seq + (uint64_t)i)) {
					fprintf(stderr, "stress-client %u: reply filler differs\n", idx);
					goto out;
				}
			rcvd[p]++;
			n_rcvd++;
			progress = true;
		}
		if (n != -EAGAIN) {
			fprintf(stderr, "stress-client %u: recv: %s\n", idx, ml_strerror(n));
			goto out;
		}
		if (progress) {
			if ((n_rcvd & 4095) == 0)
				last_progress = now_ns();
			continue;
		}
		if (now_ns() - last_progress > 60 * SEC) {
			fprintf(stderr, "stress-client %u: no progress for 60 s (sent %llu, got %llu)\n",
				idx, (unsigned long long)n_sent, (unsigned long long)n_rcvd);
			goto out;
		}
		err = ml_chan_wait(c, 50 * MS);
		if (err && err != -ETIMEDOUT) {
			fprintf(stderr, "stress-client %u: wait: %s\n", idx, ml_strerror(err));
			goto out;
		}
		last_progress = err ? last_progress : now_ns();
	}
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

uint64_t stress_msgs(void)
{
	const char *e = getenv("CHAN_MSGS");

	return e && *e ? strtoull(e, NULL, 0) : 1000000;
}

static uint64_t lanes_sum(const uint64_t n[ML_PRIO_COUNT])
{
	return n[0] + n[1] + n[2];
}

/* A client that exited: did it end well, all its messages received? */
static bool finished(int status, const uint64_t got[ML_PRIO_COUNT], uint64_t msgs)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 && lanes_sum(got) == msgs;
}

static int many_clients(unsigned nclients)
{
	static unsigned char buf[65536], rep[128];
	uint64_t expect[ML_CHAN_MAX_CLIENTS][ML_PRIO_COUNT];
	int idx_of_slot[ML_CHAN_MAX_CLIENTS];
	unsigned id_of_slot[ML_CHAN_MAX_CLIENTS];   /* the id its client came as */
	struct ml_chan_opts o = opts_default();
	uint64_t msgs = stress_msgs(), total = 0, seed;
	pid_t pid[16] = { 0 };
	char name[80], sidx[16], smsgs[32], sseed[32];
	int64_t t0, last = 0;
	double dt;
	ml_chan *d = NULL;
	int ret = -1;

	seed = getenv("CHAN_SEED") ? strtoull(getenv("CHAN_SEED"), NULL, 0) :
				     (uint64_t)time(NULL) ^ (uint64_t)getpid();
	memset(expect, 0, sizeof(expect));
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++) {
		idx_of_slot[i] = -1;
		id_of_slot[i] = 0;
	}
	chan_name(name, sizeof(name), "many");
	o.max_clients = nclients;
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	snprintf(smsgs, sizeof(smsgs), "%llu", (unsigned long long)msgs);
	snprintf(sseed, sizeof(sseed), "%llu", (unsigned long long)seed);
	t0 = now_ns();
	for (unsigned k = 0; k < nclients; k++) {
		const char *args[] = { "--role", "stress-client", name, sidx, smsgs, sseed, NULL };

		snprintf(sidx, sizeof(sidx), "%u", k);
		pid[k] = spawn_exec(args);
		CHECK(pid[k] > 0, "spawn");
	}
	last = now_ns();
	while (total < msgs * nclients) {
		int prio, n, err;
		unsigned cl, sl;

		n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf));
		if (n == -EAGAIN) {
			if (now_ns() - last > 60 * SEC) {
				int st;

				for (unsigned k = 0; k < nclients; k++)
					if (pid[k] > 0 && waitpid(pid[k], &st, WNOHANG) == pid[k]) {
						pid[k] = 0;
						if (finished(st, expect[k], msgs))
							continue;
						failf("client %u exited early (status %#x) at %llu messages",
						      k, st, (unsigned long long)total);
						goto out;
					}
				CHECK(0, "no message for 60 s after %llu", (unsigned long long)total);
			}
			err = ml_chan_wait(d, 100 * MS);
			CHECK(err == 0 || err == -ETIMEDOUT, "daemon wait: %s", ml_strerror(err));
			if (err == -ETIMEDOUT) {
				/* A client that died early shows as no traffic. */
				for (unsigned k = 0; k < nclients; k++) {
					int st;

					if (pid[k] > 0 && waitpid(pid[k], &st, WNOHANG) == pid[k]) {
						pid[k] = 0;
						/* Done with all its messages is no error. */
						CHECK(finished(st, expect[k], msgs),
						      "client %u exited (status %#x) before the end, at %llu messages",
						      k, st, (unsigned long long)total);
					}
				}
			}
			continue;
		}
		CHECK(n >= 0, "daemon recv: %s", ml_strerror(n));
		/* An id (generation 1 and up: no bare slot number), its slot in range. */
		sl = ML_CHAN_SLOT(cl);
		CHECK(cl >= ML_CHAN_MAX_CLIENTS && sl < nclients, "client id %u", cl);
		{
			struct req_hdr h;
			struct rep_hdr r;
			uint32_t rlen;

			CHECK((size_t)n >= sizeof(h), "short message (%d bytes) from %u", n, cl);
			memcpy(&h, buf, sizeof(h));
			CHECK(h.client < nclients, "slot %u: message from client %u", sl, h.client);
			/*
			 * A slot changes hands only once its client is done: a
			 * client that starts late may take the slot of one
			 * that finished (a short run, CHAN_MSGS), under an id
			 * of its own; a client keeps its id.
			 */
			if (idx_of_slot[sl] != (int)h.client) {
				CHECK(idx_of_slot[sl] < 0 ||
				      (lanes_sum(expect[idx_of_slot[sl]]) == msgs &&
				       cl != id_of_slot[sl]),
				      "slot %u: message from client %u (id %u), earlier %d "
				      "(id %u)", sl, h.client, cl, idx_of_slot[sl],
				      id_of_slot[sl]);
				idx_of_slot[sl] = (int)h.client;
				id_of_slot[sl] = cl;
			}
			CHECK(cl == id_of_slot[sl], "client %u came as id %u, earlier %u", h.client,
			      cl, id_of_slot[sl]);
			CHECK(h.lane == (uint32_t)prio, "client %u: lane %u came at prio %d", h.client,
			      h.lane, prio);
			CHECK(h.seq == expect[h.client][prio],
			      "client %u lane %d: seq %llu, want %llu (lost or reordered)", h.client,
			      prio, (unsigned long long)h.seq,
			      (unsigned long long)expect[h.client][prio]);
			CHECK(h.len == (uint32_t)n &&
				      h.len == stress_len(seed, h.client, h.lane, h.seq, 4096),
			      "client %u lane %d seq %llu: len %d, header %u", h.client, prio,
			      (unsigned long long)h.seq, n, h.len);
			CHECK(body_sum(buf + sizeof(h), h.len - sizeof(h)) == h.sum,
			      "client %u lane %d seq %llu: checksum differs", h.client, prio,
			      (unsigned long long)h.seq);
			expect[h.client][prio]++;
			total++;
			r.seq = h.seq;
			r.lane = h.lane;
			r.sum = h.sum;
			rlen = (uint32_t)(sizeof(r) + r.seq % 49);
			memcpy(rep, &r, sizeof(r));
			for (uint32_t i = sizeof(r); i < rlen; i++)
				rep[i] = (unsigned char)(r.seq + i);
			err = ml_chan_reply(d, cl, prio, rep, rlen);
			if (err == -EAGAIN)
				err = ml_chan_send_wait(d, cl, prio, rep, rlen, 30 * SEC);
			CHECK_RC(err, 0);
		}
		if ((total & 1023) == 0)
			last = now_ns();
	}
	for (unsigned k = 0; k < nclients; k++) {
		/* 0: reaped already, with all its messages in. */
		CHECK(!pid[k] || reap_ok(pid[k], "stress client", 60 * SEC), "client %u", k);
		pid[k] = 0;
	}
	dt = (double)(now_ns() - t0) / 1e9;
	/* Every client gone, nothing left over. */
	CHECK_RC(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	CHECK(ml_chan_connected(d) == 0, "daemon still sees clients");
	for (unsigned k = 0; k < nclients; k++)
		CHECK(lanes_sum(expect[k]) == msgs, "client %u: %llu messages, want %llu", k,
		      (unsigned long long)lanes_sum(expect[k]), (unsigned long long)msgs);
	printf("  # %u clients x %llu messages (seed %llu): %.2f s, %.0f round trips/s\n", nclients,
	       (unsigned long long)msgs, (unsigned long long)seed, dt, (double)total / dt);
	ret = 0;
out:
	for (unsigned k = 0; k < nclients; k++)
		if (pid[k] > 0) {
			kill(pid[k], SIGKILL);
			waitpid(pid[k], NULL, 0);
		}
	ml_chan_close(d);
	return ret;
}

int t_many_clients_4(void)
{
	return many_clients(4);
}

int t_many_clients_8(void)
{
	return many_clients(8);
}
