// SPDX-License-Identifier: MIT
/*
 * The boost-mq peer when Boost.Interprocess is not installed (peer_boost.cc
 * is then not built): listed, and skipped with the reason.
 */
#include "peer.h"

#ifndef HAVE_BOOST
static const char *boost_skip(void)
{
	return "libboost-dev not installed";
}

const struct peer_ops peer_boost_mq = {
	.name = "boost-mq",
	.modes = PEER_MODE_BIT(PEER_BUSY) | PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.skip = boost_skip,
};
#else
/* ISO C wants something in every translation unit. */
typedef int peer_boost_stub_unused;
#endif
