// SPDX-License-Identifier: MIT
/*
 * Boost.Interprocess message_queue (header-only C++, compiled as C++17 and
 * exposed through the C interface of peer.h). One queue per direction,
 * 64 messages deep, created in the parent and removed after the row.
 * Busy mode polls with try_send/try_receive; blocking mode waits in
 * timed_send/timed_receive (100 ms deadlines, to look at the abort flag).
 * Built when boost/interprocess/ipc/message_queue.hpp is found.
 */
#include "peer.h"

#include <cerrno>
#include <cstdio>

#ifdef HAVE_BOOST
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>

namespace bip = boost::interprocess;
namespace bpt = boost::posix_time;

namespace {

struct boost_end {
	bip::message_queue *tx = nullptr, *rx = nullptr;
};

void qname(const peer_row *r, int dir, char *buf, size_t len)
{
	std::snprintf(buf, len, "%s.%s", r->name, dir == 0 ? "req" : "resp");
}

int boost_prepare(peer_row *r)
{
	char n[96];

	try {
		for (int d = 0; d < (r->duplex ? 2 : 1); d++) {
			qname(r, d, n, sizeof(n));
			bip::message_queue::remove(n);
			bip::message_queue q(bip::create_only, n, 64, r->payload ? r->payload : 1);
		}
	} catch (const std::exception &ex) {
		std::snprintf(r->note, sizeof(r->note), "message_queue: %s", ex.what());
		return -EIO;
	}
	return 0;
}

void boost_unprepare(peer_row *r)
{
	char n[96];

	for (int d = 0; d < 2; d++) {
		qname(r, d, n, sizeof(n));
		bip::message_queue::remove(n);
	}
}

int boost_open(peer_end *e)
{
	const peer_row *r = e->row;
	boost_end *b = new (std::nothrow) boost_end;
	char n[96];

	if (!b)
		return -ENOMEM;
	e->priv = b;
	try {
		/* Direction 0 carries requests (role 0 -> 1), 1 replies. */
		qname(r, 0, n, sizeof(n));
		(e->role == 0 ? b->tx : b->rx) = new bip::message_queue(bip::open_only, n);
		if (r->duplex) {
			qname(r, 1, n, sizeof(n));
			(e->role == 0 ? b->rx : b->tx) = new bip::message_queue(bip::open_only, n);
		}
	} catch (const std::exception &) {
		return -EIO;
	}
	return 0;
}

bpt::ptime soon()
{
	return bpt::microsec_clock::universal_time() + bpt::milliseconds(100);
}

int boost_send(peer_end *e, int, const void *buf, size_t len)
{
	boost_end *b = static_cast<boost_end *>(e->priv);
	uint32_t spins = 0;

	try {
		if (e->row->mode == PEER_BUSY) {
			while (!b->tx->try_send(buf, len, 0))
				if ((++spins & 1023u) == 0 && peer_aborted(e))
					return -ECANCELED;
			return 0;
		}
		while (!b->tx->timed_send(buf, len, 0, soon()))
			if (peer_aborted(e))
				return -ECANCELED;
	} catch (const std::exception &) {
		return -EIO;
	}
	return 0;
}

int boost_recv(peer_end *e, int *prio, void *buf, size_t cap)
{
	boost_end *b = static_cast<boost_end *>(e->priv);
	bip::message_queue::size_type got = 0;
	unsigned int pr = 0;
	uint32_t spins = 0;

	if (prio)
		*prio = 1;
	try {
		if (e->row->mode == PEER_BUSY) {
			while (!b->rx->try_receive(buf, cap, got, pr))
				if ((++spins & 1023u) == 0 && peer_aborted(e))
					return -ECANCELED;
			return static_cast<int>(got);
		}
		while (!b->rx->timed_receive(buf, cap, got, pr, soon()))
			if (peer_aborted(e))
				return -ECANCELED;
	} catch (const std::exception &) {
		return -EIO;
	}
	return static_cast<int>(got);
}

void boost_close(peer_end *e)
{
	boost_end *b = static_cast<boost_end *>(e->priv);

	if (!b)
		return;
	delete b->tx;
	delete b->rx;
	delete b;
	e->priv = nullptr;
}

} // namespace

extern "C" const struct peer_ops peer_boost_mq = {
	.name = "boost-mq",
	.modes = PEER_MODE_BIT(PEER_BUSY) | PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.uses_shm = false,
	.skip = nullptr,
	.start = nullptr,
	.stop = nullptr,
	.prepare = boost_prepare,
	.unprepare = boost_unprepare,
	.open = boost_open,
	.ready = nullptr,
	.send = boost_send,
	.recv = boost_recv,
	.flush = nullptr,
	.close = boost_close,
};

#endif /* HAVE_BOOST */
