/* SPDX-License-Identifier: MIT */
/*
 * memlink: shared-memory messaging for processes on one machine.
 *
 * Conventions for every call in this header:
 *  - handles are opaque and owned by the caller until the matching _free();
 *  - a call returns 0 (or a byte count) on success and a negative errno on
 *    failure; ml_strerror() turns it into text;
 *  - nothing allocates, locks or makes a system call after a ring has been
 *    created or attached.
 */
#ifndef MEMLINK_H
#define MEMLINK_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the calls the shared library exports; everything else is hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define ML_API __attribute__((visibility("default")))
#else
#define ML_API
#endif

#define MEMLINK_VERSION_MAJOR 0
#define MEMLINK_VERSION_MINOR 1
#define MEMLINK_VERSION_PATCH 0

/* Message priorities. Lower value means more urgent. */
enum ml_prio {
	ML_PRIO_CRITICAL = 0,
	ML_PRIO_HIGH = 1,
	ML_PRIO_LOW = 2,
};
#define ML_PRIO_COUNT 3

/* Text for a negative errno returned by any ml_ call (or for errno itself). */
ML_API const char *ml_strerror(int err);

/* Library version as "MAJOR.MINOR.PATCH". */
ML_API const char *ml_version(void);

/*
 * Rings
 * =====
 *
 * An ml_ring is a lock-free single-producer/single-consumer queue of
 * variable-length records. One thread (or process) writes, one reads; the
 * two sides may run concurrently without any other synchronisation.
 *
 * A ring has one lane (a plain FIFO that stores each record's priority
 * with it) or three lanes (ML_RING_LANES3: Critical, High and Low get 20%,
 * 50% and 30% of the capacity, and a read returns the most urgent record
 * waiting; see urgent_every and starve_limit for the two ways to relax
 * that).
 *
 * Errors:
 *  -EINVAL    bad argument (NULL handle, bad priority, bad option)
 *  -EMSGSIZE  message longer than the ring's max_msg, or read buffer too
 *             small for the next record (the record stays in the ring)
 *  -EAGAIN    write: the lane is full; read: nothing to read
 *  -EBADMSG   the shared memory holds an index, length or header that
 *             cannot be valid; the lane is poisoned (see ml_ring_poisoned)
 *  -EPROTO    attach: the memory does not hold a ring of this version, or
 *             the ring it describes is larger than the length given
 *  -ENOMEM    creating a heap ring failed
 *  -EBUSY     read: a zero-copy peek is still outstanding
 */

typedef struct ml_ring ml_ring;

/* Use three priority lanes instead of one. */
#define ML_RING_LANES3 (1u << 0)

#define ML_RING_MIN_CAPACITY 256u
#define ML_RING_MAX_CAPACITY (1u << 30)
#define ML_RING_DEFAULT_MAX_MSG 4096u

/*
 * Ring creation options. Zero-initialise, set .size = sizeof(opts), then
 * set what you need; a NULL pointer means all defaults.
 */
struct ml_ring_opts {
	uint32_t size;         /* sizeof(struct ml_ring_opts), for growth */
	uint32_t flags;        /* ML_RING_LANES3 */
	uint32_t max_msg;      /* largest payload in bytes; 0 = the smaller
				* of 4096 and a quarter of the smallest lane;
				* at most a quarter of the smallest lane */
	uint32_t starve_limit; /* 0 = strict priority; N = a waiting lane is
				* passed over by at most N consecutive reads
				* from more urgent lanes */
	uint32_t urgent_every; /* 0 or 1 = every read looks for records in
				* more urgent lanes; N = while it has records
				* of a less urgent lane in view, a reader looks
				* only every Nth read, so an urgent record may
				* wait behind up to N-1 less urgent ones (for
				* throughput under load; see BENCHMARKS.md) */
};

/*
 * Bytes of caller memory needed for a ring of `capacity` data bytes:
 * a 512-byte header plus the data area. Returns 0 if capacity is not a
 * power of two between ML_RING_MIN_CAPACITY and ML_RING_MAX_CAPACITY.
 */
ML_API size_t ml_ring_mem_size(size_t capacity);

/*
 * Create a ring on the heap for use inside one process. `capacity` is the
 * size of the data area in bytes, a power of two.
 */
ML_API int ml_ring_new(ml_ring **out, size_t capacity, const struct ml_ring_opts *opts);

/*
 * Lay a ring out in caller-provided memory (for instance a MAP_SHARED
 * mapping). `mem` must be 128-byte aligned and `len` at least
 * ml_ring_mem_size(capacity). The handle returned uses the memory but does
 * not own it.
 */
ML_API int ml_ring_init(ml_ring **out, void *mem, size_t len, size_t capacity,
		 const struct ml_ring_opts *opts);

/*
 * Attach to a ring that ml_ring_init() laid out in `mem`, typically from
 * another process. Every field of the header is validated; the handle keeps
 * its own copy of the geometry (and of the creator's read policy:
 * starve_limit, urgent_every) and never
 * re-reads it. -EBADMSG: the memory holds corrupt indices.
 */
ML_API int ml_ring_attach(ml_ring **out, void *mem, size_t len);

/* Release a handle (and, for ml_ring_new rings, the memory). NULL is ok. */
ML_API void ml_ring_free(ml_ring *r);

/* Producer: copy `len` bytes in as one record of priority `prio`. */
ML_API int ml_ring_write(ml_ring *r, int prio, const void *buf, size_t len);

/*
 * Consumer: copy the next record into `buf` and return its length; its
 * priority goes to *prio when prio is not NULL.
 */
ML_API int ml_ring_read(ml_ring *r, int *prio, void *buf, size_t buflen);

/*
 * Producer, zero-copy: reserve `len` contiguous bytes for a record of
 * priority `prio`, fill them through *ptr, then ml_ring_commit() the bytes
 * actually used (at most `len`). Nothing is visible to the reader before
 * the commit; any later reserve or write call, whether it succeeds or
 * not, drops an uncommitted reservation.
 */
ML_API int ml_ring_reserve(ml_ring *r, int prio, size_t len, void **ptr);
ML_API int ml_ring_commit(ml_ring *r, size_t len);

/*
 * Consumer, zero-copy: point *ptr at the next record and return its length
 * (its priority to *prio). The bytes stay valid and in place until
 * ml_ring_release(); a second peek before the release returns the same
 * record.
 */
ML_API int ml_ring_peek(ml_ring *r, int *prio, const void **ptr);
ML_API int ml_ring_release(ml_ring *r);

/* Geometry and state, for either side. */
struct ml_ring_info {
	uint32_t lanes;            /* 1 or 3 */
	uint32_t max_msg;
	uint32_t capacity;         /* data bytes, all lanes */
	uint32_t lane_capacity[ML_PRIO_COUNT];
	uint32_t lane_used[ML_PRIO_COUNT]; /* bytes written, not yet read */
	uint32_t poisoned;         /* bit i set: lane i is poisoned */
};
ML_API int ml_ring_info(ml_ring *r, struct ml_ring_info *info);

/*
 * Bit mask of lanes this handle found corrupt. A poisoned lane is never
 * read again; records in healthy lanes still are, and once those are empty
 * reads return -EBADMSG rather than -EAGAIN.
 */
ML_API unsigned ml_ring_poisoned(const ml_ring *r);

/*
 * Channels
 * ========
 *
 * A daemon creates a named channel; clients connect to it by name. Every
 * client gets its own pair of three-lane rings in the channel's shared
 * memory (requests to the daemon, responses back), so clients never contend
 * with each other and the daemon serves them fairly within each priority.
 *
 * Backends, chosen when the channel is created or opened (option .backend,
 * else $MEMLINK_BACKEND = kmod|linux|win|darwin, else the first available):
 *   kmod    /dev/memlink regions and wait/wake; the kernel reports a dead
 *           daemon at once (Linux with memlink.ko loaded)
 *   linux   no module: a sealed memfd and eventfds, which the daemon passes
 *           to each client over a Unix socket in the abstract namespace
 *           ("@memlink.NAME"); the connection's closing reports a dead
 *           peer at once. Nothing is left in any filesystem.
 *   win     named file mappings, WaitOnAddress and named events
 *   darwin  POSIX shared memory objects (the control region, which
 *           clients map read-only, and one per client, which only it
 *           and the daemon hold), passed over a Unix socket in /var/tmp;
 *           os_sync_wait_on_address/__ulock_wait; the connection's closing
 *           reports a dead client to the daemon at once
 *
 * Errors, besides the ring's:
 *  -ENOENT        connect: no channel of that name
 *  -EEXIST        create: a live channel of that name exists
 *  -EPROTO        connect: layout or version mismatch (linux: or a reply
 *                 that breaks the protocol)
 *  -ECONNREFUSED  connect: every client slot is taken
 *  -EACCES        connect: the channel's mode does not admit the caller
 *  -EPERM         connect: the daemon is not of the uid the client requires
 *  -EAGAIN        send: that lane is full (or a send_wait timed out)
 *  -ETIMEDOUT     wait: nothing arrived in time; connect (linux): the
 *                 daemon did not answer within 5 s
 *  -EPIPE         the peer is gone: the daemon died or shut down (client),
 *                 or that client left (daemon, for calls naming its id)
 *  -ENODEV        the requested backend is not available here
 * ml_client_connect() has the details.
 */

typedef struct ml_chan ml_chan;

/*
 * Wait modes. How senders wake a sleeper: a send makes no system call
 * unless the receiver said it may sleep. On Linux, a busy or adaptive
 * handle sleeps after a membarrier(2) (~1-2 us, once per sleep) so that
 * sends to it need no memory fence; senders to a blocking handle, and every
 * sender elsewhere, fence on each send. That barrier interrupts, for about
 * a microsecond, the CPUs then running memlink processes. A handle belongs
 * to the process that opened it: a child made by fork() opens its own.
 */
enum ml_wait_mode {
	ML_WAIT_ADAPTIVE = 0, /* spin for spin_ns, then sleep (default) */
	ML_WAIT_BUSY = 1,     /* spin, never sleep: lowest latency, one CPU */
	ML_WAIT_BLOCKING = 2, /* sleep at once */
};

enum ml_backend {
	ML_BACKEND_AUTO = 0,
	ML_BACKEND_KMOD = 1,
	ML_BACKEND_LINUX = 2,
	ML_BACKEND_WIN = 3,
	ML_BACKEND_DARWIN = 4,
};

#define ML_CHAN_MAX_CLIENTS 32u
#define ML_CHAN_NAME_MAX 63u

/*
 * Channel options: zero-initialise, set .size = sizeof(opts). Fields marked
 * "daemon" shape the channel and are ignored by clients, who read them from
 * the channel itself.
 */
/*
 * Client: whom the daemon must run as. By default a client connects only
 * to a channel whose owner (the daemon's effective uid when it created it)
 * is the client's own effective uid: a channel of another user, say one
 * that took over the name while the real daemon was down, gives -EPERM.
 * ML_CHAN_DAEMON_UID accepts exactly daemon_uid instead; ML_CHAN_ANY_DAEMON
 * accepts any owner (the mode still decides who may connect). The owner is
 * checked where the backend knows it: kmod, linux, darwin; on Windows it is
 * not checked. linux: the owner is the daemon's uid as the kernel reports
 * it for the channel's socket (SO_PEERCRED). Abstract socket names have no
 * permissions, so any local user may bind a free one first; this check is
 * what keeps a client from such an impostor.
 */
#define ML_CHAN_DAEMON_UID  (1u << 0)
#define ML_CHAN_ANY_DAEMON  (1u << 1)
/*
 * Windows, daemon and client alike: the channel's objects are in the
 * machine's Global\ namespace instead of the session's Local\ one, so that
 * a daemon running as a service (session 0) and clients on a desktop meet.
 * Creating one needs SeCreateGlobalPrivilege outside session 0 (services
 * and administrators have it; else -EACCES). A client finds a channel only
 * in the namespace it names. Global channels are not listed (ml_chan_list).
 * Other backends ignore the flag: they have no sessions (kmod's names are
 * per IPC namespace, linux's per network namespace).
 */
#define ML_CHAN_GLOBAL      (1u << 2)
/*
 * Daemon: report each client's arrival and departure as an event from
 * ml_chan_recv() (and the batch receives, as their first result):
 *   ML_CHAN_JOINED  client *client connected; its messages follow
 *   ML_CHAN_LEFT    client *client is gone: it closed its handle, died in a
 *                   call or outside one, or broke its header and was cut
 *                   off. Its messages were all received before this; from
 *                   now on every call naming it gives -EPIPE
 * Each exactly once per client, JOINED before its first message and LEFT
 * after its last one (and after its -EOWNERDEAD report, if any). Its slot
 * goes to no new client before LEFT was received (a daemon that takes no
 * events holds the slot). ml_chan_wait() returns 0 while an event waits,
 * and so an event wakes it; so does ml_chan_fd() where there is one. A
 * departure is seen at once: the backend learns it from the connection
 * (linux, win, darwin) or the module (kmod, by a sleeping daemon; one that
 * spins looks every 50 ms, and with a memlink.ko older than libmemlink
 * 0.1's a sleeper within 20 ms). Without this flag recv returns no
 * events, and a departure shows only as -EPIPE from the calls naming the
 * client.
 */
#define ML_CHAN_EVENTS      (1u << 3)
#define ML_CHAN_JOINED      (-EISCONN)
#define ML_CHAN_LEFT        (-ECONNRESET)

/*
 * Client ids. recv on a daemon names the sender by an id that stands for
 * that one connection for the daemon's whole life: once the client has
 * gone, a call naming it (ml_chan_reply, _send_wait, _send_many,
 * _send_reserve and its commit, ml_chan_peer_alive) gives -EPIPE, however
 * soon a new client takes its slot; it never reaches the newcomer, whose
 * id differs. ML_CHAN_SLOT(id) is the slot, 0..max_clients - 1, for a
 * table indexed by slot (a later client may be given the same slot). An
 * id that no client ever had (say a bare slot number) gives -EINVAL.
 * Ids are never 0 and never reused: a slot whose 2^27 - 1 ids are used up
 * is retired, never handed out again.
 */
#define ML_CHAN_SLOT(id)    ((unsigned)(id) & 31u)

struct ml_chan_opts {
	uint32_t size;
	uint32_t flags;        /* ML_CHAN_DAEMON_UID or ML_CHAN_ANY_DAEMON;
				* ML_CHAN_GLOBAL; daemon: ML_CHAN_EVENTS */
	uint32_t backend;      /* enum ml_backend */
	uint32_t wait_mode;    /* enum ml_wait_mode */
	uint32_t spin_ns;      /* adaptive spin before sleeping; 0: 50 us */
	uint32_t max_clients;  /* daemon: 1..ML_CHAN_MAX_CLIENTS; 0: 8 */
	uint32_t ring_size;    /* daemon: bytes of each direction's ring,
				* a power of two; 0: 256 KiB */
	uint32_t max_msg;      /* daemon: largest message; 0: 4096 */
	uint32_t mode;         /* daemon: permission bits; 0: 0600. Windows:
				* a DACL of the objects, owner bits for the
				* creating user, group bits for its token's
				* primary group, other bits for Authenticated
				* Users (ml_chan(3)) */
	uint32_t daemon_uid;   /* client, with ML_CHAN_DAEMON_UID: the owner
				* required (0 is root) */
};

/*
 * Daemon: create channel `name` (1-63 of [A-Za-z0-9._-]).
 * linux: -EEXIST when any process of this network namespace holds the
 * name. The handle runs a service thread (joined by ml_chan_close) that
 * admits clients on the channel's socket, checking each one's uid, gid
 * and groups (SO_PEERCRED, SO_PEERGROUPS) against the mode as for a file
 * of the daemon's effective uid and gid (read and write needed; root
 * always admitted), and watches their connections; it blocks every signal
 * and never touches the rings. A fork()ed child has the descriptors but
 * not the thread: it keeps the channel alive until it exits and may only
 * close the handle. fork() then exec() is fine: all are O_CLOEXEC.
 */
ML_API int ml_daemon_create(ml_chan **out, const char *name,
			    const struct ml_chan_opts *opts);
/*
 * Client: connect to channel `name`. linux: the daemon admits the client
 * on the channel's socket and passes it the memory and doorbells. Errors:
 *  -ENOENT        no daemon listens (none, still starting, in another
 *                 network namespace, or of an older libmemlink)
 *  -EACCES        the channel's mode refuses the caller
 *  -ECONNREFUSED  no free slot
 *  -EPERM         the daemon is not of the uid required (its own by default)
 *  -ETIMEDOUT     the daemon did not answer within 5 s (it is stopped, or
 *                 a fork()ed child holds its socket)
 *  -EPROTO        a broken reply (size, seals, descriptor kinds)
 *  -EPIPE         the daemon closed the connection without answering
 */
ML_API int ml_client_connect(ml_chan **out, const char *name,
			     const struct ml_chan_opts *opts);

/*
 * Client: send a message to the daemon. Non-blocking: -EAGAIN when full.
 * Room a receiver frees reaches its sender an eighth of a lane at a time
 * while the receiver reads on, and all of it once the receiver finds
 * nothing to read, ends a batch or a view, or wakes a sender waiting for
 * room: a sender polling a full lane then takes the receiver's read index
 * from its core once in many messages, not once a message.
 */
ML_API int ml_chan_send(ml_chan *c, int prio, const void *buf, size_t len);
/*
 * Daemon: send a message to client `client` (an id as recv returned it).
 * -EPIPE: that client has gone; -EINVAL: no client ever had that id.
 */
ML_API int ml_chan_reply(ml_chan *c, unsigned client, int prio, const void *buf, size_t len);
/*
 * Either side, blocking: like send (client, `client` ignored) or reply
 * (daemon), waiting up to timeout_ns (< 0: forever) for room in the lane;
 * -EAGAIN if there was none in time, -EPIPE if the peer went. It spins
 * and sleeps as the wait mode says; a sleeper is woken by the reader once
 * that has read half the lane.
 */
ML_API int ml_chan_send_wait(ml_chan *c, unsigned client, int prio, const void *buf,
			     size_t len, int64_t timeout_ns);

/* One message of a batch (ml_chan_send_many, ml_chan_recv_many, _view). */
struct ml_msg {
	void *data;        /* send: the bytes; recv: in buf, 8-byte aligned;
			    * view: in the channel's memory, read only */
	uint32_t len;
	int prio;
	unsigned client;   /* recv on a daemon: who sent it; else unused */
	uint32_t reserved; /* recv: 0 */
};

/*
 * Send msgs[0..n) (data, len, prio of each) to the daemon (client) or to
 * `client` (daemon), in order, as that many sends would, with at most one
 * wake-up: a reader that sleeps (blocking mode) pays one wake-up per batch
 * (one that spins may take the first before the last is written). Returns
 * how many were sent (>= 1), stopping at the first message a single send
 * would refuse (full lane, too big): the next call, from that one on,
 * returns why.
 */
ML_API int ml_chan_send_many(ml_chan *c, unsigned client, const struct ml_msg *msgs,
			     unsigned n);
/*
 * Zero-copy send: room for a message of up to len bytes at prio, to the
 * daemon (client; `client` unused) or to `client` (daemon); *ptr points
 * at it, in the channel's memory. Write the message there, then
 * ml_chan_send_commit(c, n) sends its first n bytes (n <= len) as one
 * send would. The peer sees nothing before the commit. One reservation
 * per handle: the next reserve drops it, and so does any send to the same
 * peer (the commit then returns -EINVAL). A daemon's commit gives -EPIPE,
 * and sends nothing, when the client left after the reserve (as far as
 * the daemon has seen: its last scan, or the backend's notice).
 * Errors of the reserve are those of ml_chan_send() (ml_chan_reply()).
 */
ML_API int ml_chan_send_reserve(ml_chan *c, unsigned client, int prio, size_t len, void **ptr);
ML_API int ml_chan_send_commit(ml_chan *c, size_t len);

/*
 * Receive the most urgent message waiting; the daemon takes clients in
 * turn within each priority. (It looks at all clients once a round, then
 * takes one message from each that had one in that lane: a more urgent
 * message sent meanwhile waits at most max_clients - 1 messages.)
 * Returns its length; *prio and (daemon) *client (the sender's id) are
 * set when not NULL. -EAGAIN: nothing waiting;
 * -EMSGSIZE: the next message is longer than len (it stays); -EPIPE
 * (client): the daemon is gone and everything it sent was received. A
 * daemon also gets, with *client set, the reports of ml_chan_stats()
 * (-EOWNERDEAD, -EBADMSG) and, with ML_CHAN_EVENTS, ML_CHAN_JOINED and
 * ML_CHAN_LEFT: none of them is an error of the call.
 */
ML_API int ml_chan_recv(ml_chan *c, int *prio, unsigned *client, void *buf, size_t len);

/*
 * Receive up to n messages, the ones n ml_chan_recv() calls would return
 * in the same order, copied one after another into buf (each at an 8-byte
 * aligned offset) and described in msgs[0..]. Returns how many (>= 1), or
 * what ml_chan_recv() would for the first (-EAGAIN: nothing waiting,
 * -EMSGSIZE: it does not fit in len, a daemon's fault report). Stops early
 * at a message that does not fit in what is left of buf, and before a
 * fault report, which the next call returns.
 * The room the messages took in the lanes is given back once, as the call
 * returns, not once a message: for a stream of small messages that is
 * what makes the reader faster than the writer (BENCHMARKS.md). The writer
 * may therefore find a lane full for as long as the call takes: size n
 * and len for a fraction of the ring, not for all of it.
 */
ML_API int ml_chan_recv_many(ml_chan *c, struct ml_msg *msgs, unsigned n, void *buf,
			     size_t len);

/*
 * Zero-copy: the messages ml_chan_recv_many() would return, left where they
 * lie in the channel's shared memory, msgs[i].data pointing at each (8-byte
 * aligned). The view, and the room its messages take in the lanes, is held
 * until ml_chan_recv_done(), or the next ml_chan_recv, _recv_many,
 * _recv_view, ml_chan_wait or ml_chan_close on c, which end it first.
 * Meanwhile the peer may find a lane full: end a view before waiting for
 * room to send (ml_chan_send_wait), or the two sides may wait on each other.
 * The bytes are in memory the peer maps: lengths and priorities are checked
 * and copied into msgs, but a broken peer could still change the bytes
 * while you read them; copy (ml_chan_recv_many) when that matters.
 */
ML_API int ml_chan_recv_view(ml_chan *c, struct ml_msg *msgs, unsigned n);
/* End the view ml_chan_recv_view() holds, if any: its room goes back. */
ML_API int ml_chan_recv_done(ml_chan *c);

/*
 * Wait until there is something to receive, the peer is gone (-EPIPE) or
 * timeout_ns passed (-ETIMEDOUT; < 0: no timeout). Spins and/or sleeps as
 * the wait mode says. Returns 0 when there is something to receive.
 */
ML_API int ml_chan_wait(ml_chan *c, int64_t timeout_ns);

/* Wake the peer if it sleeps in ml_chan_wait (sends already do this). */
ML_API int ml_chan_signal(ml_chan *c);

/* 1 while the peer is there (client: the daemon; daemon: any client). */
ML_API int ml_chan_connected(ml_chan *c);

/*
 * Daemon: the ids of the clients connected now (as far as the daemon has
 * seen: a client that is still setting up is not there yet, one known to
 * have gone is not there any more), in slot order, into ids[0..n).
 * Returns how many are connected, which may be more than n. -EINVAL on a
 * client's handle.
 */
ML_API int ml_chan_clients(ml_chan *c, unsigned *ids, unsigned n);

/* Daemon: stop serving; every client is told and gets -EPIPE. */
ML_API int ml_chan_shutdown(ml_chan *c);

/*
 * Daemon: write this process's PID to `path`, for humans and init scripts;
 * ml_chan_close() removes the file. memlink itself never reads it: whether
 * a daemon lives is the OS's to say (a lock, handle or connection it drops
 * at death), never a PID's, which the system reuses.
 */
ML_API int ml_chan_pidfile(ml_chan *c, const char *path);

/*
 * Close the handle; a daemon's close shuts the channel down. NULL is ok.
 * Windows: it may be called from DllMain and from a DLL's destructors, as
 * it waits for no thread to exit (the loader lock forbids that), only for
 * its holder threads to let go; ml_daemon_create and ml_client_connect
 * may not be (they start a thread and wait for it). A DLL linked with
 * libmemlink.a stays loaded while it has channels open, since their
 * threads run its code: close them before FreeLibrary, or at exit.
 */
ML_API void ml_chan_close(ml_chan *c);

/*
 * Backpressure from 0.0 (empty) to 1.0 (full): the fullest request lane
 * (daemon: over all clients; client: its own), unless the daemon set an
 * override with ml_chan_set_backpressure (level < 0 removes it).
 */
ML_API double ml_chan_backpressure(ml_chan *c);
ML_API int ml_chan_set_backpressure(ml_chan *c, double level);

/*
 * A descriptor that polls readable when something may be waiting, for
 * epoll or io_uring, or -ENOTSUP where the backend has none. From the
 * first call on, a peer's send wakes this handle (a system call, as with
 * an eventfd) if it is the peer's first since a receive on this handle
 * found nothing: so recv until -EAGAIN, then poll again. It may be ready
 * with nothing to read (a stale or shared wake-up). It belongs to
 * the handle: do not close it; ml_chan_close() does.
 *   kmod    a client's: its region's descriptor (POLLHUP too when the
 *           daemon dies); the daemon's: an epoll descriptor over the
 *           control region's, readable also when a client's file goes.
 *           An ml_chan_recv() that finds nothing clears the readiness
 *   win     the value of a HANDLE, (HANDLE)(intptr_t)fd, of an auto-reset
 *           event: a wait on it that returns (WaitForMultipleObjects,
 *           RegisterWaitForSingleObject) clears it
 *   linux   an epoll descriptor, on either side, over the handle's
 *           doorbell (an eventfd); an ml_chan_recv() that finds nothing
 *           clears its readiness. A client's also turns readable, and
 *           stays so, when its daemon dies (the next call gives -EPIPE);
 *           a daemon's when a client connects or dies.
 *   darwin  -ENOTSUP. A client sleeps on an address in its area
 *           (os_sync_wait_on_address, __ulock_wait), which no kqueue can
 *           watch, and the daemon rings it there (its connection carries
 *           only the client's rings of the daemon). Run ml_chan_wait() in
 *           a thread and wake your loop from there (a pipe of your own),
 *           which costs the same and stays private.
 */
ML_API int ml_chan_fd(ml_chan *c);

/*
 * Heartbeat, for a peer that lives but hangs (the OS tells a dead peer
 * apart by itself: -EPIPE). Each side records "alive now" in the channel
 * as it runs ml_chan_recv() and ml_chan_wait(), at least every 50 ms
 * while it is in either (a wait wakes for it); a side that works longer
 * between calls, or waits elsewhere (epoll on ml_chan_fd()), calls
 * ml_chan_beat() itself.
 *
 * ml_chan_peer_alive(): 1 if the peer (client: the daemon; daemon: client
 * `client`, an id) recorded a beat within the last within_ns nanoseconds,
 * 0 if not (it is hung, stopped, or not calling), -EPIPE if it is gone
 * (-EINVAL: an id never given).
 * Times are the system's monotonic clock, the same for every process.
 */
ML_API int ml_chan_beat(ml_chan *c);
ML_API int ml_chan_peer_alive(ml_chan *c, unsigned client, int64_t within_ns);

/*
 * What dead or broken peers left behind, as this handle saw it. Set
 * .size = sizeof(stats) before the call.
 *
 * The daemon's ml_chan_recv() also reports each such event once, with
 * *client set to the client's id, after that client's last message and
 * before its slot can go to a new client:
 *   -EOWNERDEAD  that client died in the middle of a send: the part it
 *                wrote was dropped, never delivered; its slot is free again
 *   -EBADMSG     that client's request lanes are corrupt (it wrote over
 *                them): they are not read any more; the others still are
 * A client's ml_chan_recv() returns -EBADMSG for corrupt response lanes
 * (ring semantics), and a daemon that died mid-reply is counted here.
 */
struct ml_chan_stats {
	uint32_t size;
	uint32_t flags;            /* none yet: 0 */
	uint64_t abandoned;        /* records claimed by a peer that died, dropped */
	uint64_t poisoned;         /* rings found corrupt */
	uint64_t clients_died;     /* daemon: clients gone without leaving */
	int32_t last_error;        /* the latest of them: -EOWNERDEAD, -EBADMSG; 0 */
	uint32_t last_client;      /* daemon: whose (its id) */
	/* Since version 2 of this struct (it ended at last_client before): */
	uint64_t sleeps;           /* times this handle slept in the kernel */
	uint64_t missed_wakeups;   /* sleeps that ran out their slice while a
				    * message waited and no sender rang, even
				    * a second later: a lost wake-up (should
				    * stay 0) */
	/* Since version 3 (it ended at missed_wakeups before): */
	uint64_t wakeups;          /* wake-up calls this handle made to its
				    * peers' sleep: at most one per announced
				    * sleep (sleeps_announced) of each peer
				    * it sends to */
	uint64_t spins_cut;        /* adaptive waits that slept after 2 us of
				    * spinning, not spin_ns, as this thread
				    * had been preempted (more runnable
				    * threads than cores) */
	/* Since version 4 (it ended at spins_cut before): */
	uint64_t sleeps_announced; /* times this handle told its peers it
				    * may sleep: each sleep, one it gave up
				    * as a message came at its last look,
				    * and each re-arm of ml_chan_fd(); each
				    * peer wakes it at most once per
				    * announcement, so a peer's wakeups to
				    * it never exceed this */
};
ML_API int ml_chan_stats(ml_chan *c, struct ml_chan_stats *stats);

/*
 * Inspection, for monitoring (memlink-stat): a channel's state read from
 * outside, without joining it. Values come from memory other processes
 * write: they are checked, and only ever reported.
 */
struct ml_chan_client_status {
	uint32_t state;            /* 0 free, 1 connecting, 2 connected, 3 leaving */
	uint32_t pid;              /* as the client wrote it: for humans only */
	int32_t alive;             /* 1, 0, or a negative errno */
	uint32_t corrupt;          /* bit l: request lane l, bit 3 + l: response
				    * lane l has insane indices */
	int64_t beat_age_ns;       /* since its last heartbeat; -1: none */
	uint32_t req_used[ML_PRIO_COUNT], req_cap[ML_PRIO_COUNT];
	uint32_t resp_used[ML_PRIO_COUNT], resp_cap[ML_PRIO_COUNT];
};

struct ml_chan_status {
	uint32_t size;             /* set to sizeof before the call */
	uint32_t flags;
	char name[ML_CHAN_NAME_MAX + 1];
	char backend[8];
	uint64_t region_size;
	uint32_t daemon_pid;       /* as the daemon wrote it: for humans only */
	int32_t daemon_alive;      /* 1, 0, or a negative errno */
	uint32_t daemon_state;     /* 0 starting, 1 running, 2 shut down */
	uint32_t max_clients;
	uint32_t clients;          /* connected, as the daemon last counted */
	uint32_t ring_size;
	uint32_t max_msg;
	uint32_t pad;
	double backpressure;
	int64_t beat_age_ns;       /* since the daemon's last heartbeat; -1: none */
	struct ml_chan_client_status client[ML_CHAN_MAX_CLIENTS];
	/*
	 * Since version 2 of this struct (it ended at client[] before):
	 * who the daemon and each client are, as the kernel reported them
	 * (linux: SO_PEERCRED of their connections), ML_CHAN_NOBODY where
	 * the backend cannot tell or nobody is there. Pids are as the
	 * daemon's PID namespace sees them.
	 */
	uint32_t daemon_uid;
	uint32_t daemon_kpid;
	uint32_t client_uid[ML_CHAN_MAX_CLIENTS];
	uint32_t client_kpid[ML_CHAN_MAX_CLIENTS];
	/*
	 * Since version 3 (it ended at client_kpid[] before): a topic
	 * (ml_pub(3)) is inspected as a channel whose clients are its
	 * subscribers. For a topic, client[i].resp_used[] is subscriber i's
	 * lag, the bytes of each lane it has still to read, out of
	 * resp_cap[] (its lane sizes), and sub_lost[i] the records it says
	 * it lost; both as the publisher last looked (at least every 256
	 * publishes). req_used[] and req_cap[] are 0; ring_size and max_msg
	 * are the topic's.
	 */
	uint32_t kind;             /* ML_CHAN_KIND_* */
	uint32_t topic_policy;     /* a topic's ML_TOPIC_*, 0 for a channel */
	uint64_t sub_lost[ML_CHAN_MAX_CLIENTS];
};

#define ML_CHAN_KIND_CHANNEL 0u
#define ML_CHAN_KIND_TOPIC   1u

#define ML_CHAN_NOBODY 0xffffffffu

/*
 * Fill *st for channel `name` (backend: enum ml_backend, 0 = as usual);
 * st->size may be that of version 1 (up to client[]). -ENOENT: no such
 * channel; -EPIPE (kmod): its daemon is gone, and the module lets no one
 * new in (the region lives on for its clients). linux: the daemon itself
 * answers, so also -EACCES (its mode does not admit us), -ETIMEDOUT (it
 * did not answer in 5 s), -EPIPE (it closed without answering) and -EPROTO.
 */
ML_API int ml_chan_inspect(const char *name, unsigned backend, struct ml_chan_status *st);
/*
 * Call fn(name, arg) for every channel of the backend here (a dead
 * daemon's too) until fn returns non-zero, which is returned. kmod:
 * channels whose names are over 60 bytes are not listed (their regions
 * carry a hash). Windows, whose named objects cannot be listed: the user's
 * own channels whose daemon runs, by the record file each daemon keeps
 * open in %LOCALAPPDATA%\memlink and the system deletes when its process
 * ends (not ML_CHAN_GLOBAL ones; -ENOTSUP without LOCALAPPDATA). linux:
 * the listening "@memlink.NAME" sockets of the caller's network namespace,
 * from /proc/net/unix, so only channels whose daemon (or a fork()ed child
 * of it) still runs.
 */
ML_API int ml_chan_list(unsigned backend, int (*fn)(const char *name, void *arg), void *arg);
/*
 * Remove what dead daemons left behind: channel `name`, or with NULL every
 * channel, whose daemon is gone (darwin: its object, lock file and socket
 * file). A live
 * daemon's channel is left alone. The module frees a region with its last
 * user, and linux leaves nothing in any filesystem: there it returns 0.
 * Windows frees its objects with their last handle; there the records
 * nothing holds open are removed (a machine that went down leaves them).
 * Returns how many were removed.
 */
ML_API int ml_chan_gc(const char *name, unsigned backend);

/* The backend in use, as its name ("kmod", "linux", "win", "darwin"). */
ML_API const char *ml_chan_backend(const ml_chan *c);

/*
 * ---- Topics: publish-subscribe (ml_pub(3)) --------------------------------
 *
 * One publisher writes each message once into shared memory, and every
 * subscriber reads it there. Three lanes, with the channels' 20/50/30
 * split of the capacity, are read most urgent first and FIFO within a
 * lane. Each record carries its lane's sequence number (0, 1, 2, ...), so
 * a subscriber sees any gap. A topic has a name as a channel has (1-63 of
 * [A-Za-z0-9._-], the same namespace: a channel and a topic cannot share
 * one), runs on the same backends, and its subscribers take the slots a
 * channel's clients would. A subscriber that opens a channel, or a client
 * that connects to a topic, gets -EPROTO.
 *
 * The publisher chooses at creation what a slow subscriber costs:
 *  ML_TOPIC_LOSSY     the publisher never waits. A subscriber that falls a
 *                     whole lane behind loses the oldest records: it
 *                     learns exactly how many (ml_sub_stats(), and the
 *                     gaps in the sequence numbers), and it never receives
 *                     a torn or overwritten record. It maps the topic
 *                     read-only, so no subscriber can change what the
 *                     others read.
 *  ML_TOPIC_RELIABLE  the slowest live subscriber bounds the publisher: a
 *                     lane that subscriber has not read gives -EAGAIN
 *                     (ml_pub_send_wait() waits). Each subscriber writes
 *                     only a cursor of its own, which the publisher checks;
 *                     one that dies, or writes a bad cursor, holds nobody
 *                     back: the publisher goes on once the backend reports
 *                     the death (at once on kmod, linux, win and darwin: a
 *                     connection or the module tells; a publisher that
 *                     only sends looks at least every 50 ms).
 * The publisher counts a new subscriber (holds for it, wakes it) from its
 * first call after the subscriber opened. A lossy subscriber starts when
 * it opens; a reliable one where the publisher puts it when it counts it:
 * at the next record published (or, ML_SUB_OLDEST, at the oldest still in
 * the ring), reading nothing before. From there on a reliable subscriber
 * loses nothing.
 *
 * Threads: a handle is used by one thread at a time, as channels are.
 */
typedef struct ml_pub ml_pub;
typedef struct ml_sub ml_sub;

#define ML_TOPIC_LOSSY     0u
#define ML_TOPIC_RELIABLE  1u
#define ML_TOPIC_MAX_SUBS  32u
/* ml_sub_open(): start at the oldest record still there, not at the next one. */
#define ML_SUB_OLDEST      (1u << 8)

/*
 * ml_sub_done(): the record viewed was overwritten meanwhile (lossy).
 * Windows' C library has no ESTALE: there memlink uses a value of its own,
 * which ml_strerror() knows.
 */
#ifdef ESTALE
#define ML_ESTALE ESTALE
#else
#define ML_ESTALE 1116
#endif

/* Zero-initialise, set .size = sizeof(opts). */
struct ml_topic_opts {
	uint32_t size;
	uint32_t flags;        /* ML_CHAN_GLOBAL; subscriber: ML_CHAN_DAEMON_UID
				* or ML_CHAN_ANY_DAEMON (as for clients; the
				* publisher is the daemon), ML_SUB_OLDEST */
	uint32_t backend;      /* enum ml_backend */
	uint32_t wait_mode;    /* enum ml_wait_mode, for waits of this handle */
	uint32_t spin_ns;      /* adaptive spin before sleeping; 0: 50 us */
	uint32_t policy;       /* publisher: ML_TOPIC_LOSSY (0) or _RELIABLE */
	uint32_t max_subs;     /* publisher: 1..ML_TOPIC_MAX_SUBS; 0: 8 */
	uint32_t capacity;     /* publisher: the ring's bytes, a power of two,
				* 4096..1 GiB; 0: 256 KiB */
	uint32_t max_msg;      /* publisher: largest message; 0: the largest
				* allowed, a quarter of the smallest lane and
				* at most 4096 */
	uint32_t mode;         /* publisher: permission bits; 0: 0600 (as a
				* channel's mode) */
	uint32_t daemon_uid;   /* subscriber, with ML_CHAN_DAEMON_UID */
};

/*
 * Publisher: create topic `name`. Errors as ml_daemon_create(): -EINVAL
 * (bad name, options), -EEXIST (a live channel or topic has the name; a
 * dead one's is replaced), -EACCES, -ENOMEM, -ENODEV, -ENOSPC (kmod).
 */
ML_API int ml_pub_create(ml_pub **out, const char *name, const struct ml_topic_opts *opts);
/*
 * Publish len bytes at prio to every subscriber. -EMSGSIZE: over max_msg;
 * -EINVAL: bad prio or arguments; reliable only: -EAGAIN, the lane has no
 * room until the slowest subscriber reads.
 */
ML_API int ml_pub_send(ml_pub *p, int prio, const void *buf, size_t len);
/*
 * The same, waiting up to timeout_ns (< 0: forever) for room as the wait
 * mode says: -ETIMEDOUT if none came. A lossy topic never waits.
 */
ML_API int ml_pub_send_wait(ml_pub *p, int prio, const void *buf, size_t len,
			    int64_t timeout_ns);
/*
 * Publish msgs[0..n) (data, len, prio of each) in order, with one look at
 * the subscribers' sleep at the end. How many were published (>= 1), or
 * why the first was not; it stops at the first a single send would refuse.
 */
ML_API int ml_pub_send_many(ml_pub *p, const struct ml_msg *msgs, unsigned n);
/*
 * Zero copy: *ptr is room for up to len bytes at prio in the ring itself;
 * ml_pub_commit(p, n) publishes the first n of them (n <= len; 0 with
 * nothing published gives the room up). Errors as ml_pub_send(), and
 * -EBUSY if a reservation is open; commit without one: -EINVAL. A
 * publisher that dies before the commit exposes nothing.
 */
ML_API int ml_pub_reserve(ml_pub *p, int prio, size_t len, void **ptr);
ML_API int ml_pub_commit(ml_pub *p, size_t len);
/*
 * Reliable: how full the fullest lane is for its slowest live subscriber,
 * 0..1 (1: the next send there may give -EAGAIN). Lossy: 0.
 */
ML_API double ml_pub_backpressure(ml_pub *p);
/* Subscribers the publisher counts now. */
ML_API int ml_pub_subscribers(ml_pub *p);
/* Subscribers read what was published, then get -EPIPE. */
ML_API void ml_pub_close(ml_pub *p);

/*
 * Subscriber: open topic `name`. Errors as ml_client_connect(), and
 * -EPROTO for a channel (or a topic of an unknown layout), -ECONNREFUSED
 * when max_subs subscribers are there.
 */
ML_API int ml_sub_open(ml_sub **out, const char *name, const struct ml_topic_opts *opts);
/*
 * The next record, most urgent lane first, copied into buf: its length,
 * with its priority and sequence number in *prio and *seq (either may be
 * NULL). Errors:
 *  -EAGAIN    nothing to read
 *  -EMSGSIZE  buf is smaller than the record, which stays to be read
 *  -EPIPE     the publisher is gone and everything it published was read
 *  -EBADMSG   a lane holds bytes that make no sense (a broken or hostile
 *             publisher): it is not read any more
 * Records lost (lossy) are skipped: the sequence numbers jump over them,
 * and ml_sub_stats() counts them.
 */
ML_API int ml_sub_recv(ml_sub *s, int *prio, uint64_t *seq, void *buf, size_t len);
/*
 * In place: *ptr points at the record in the topic's memory (read-only)
 * until ml_sub_done(); errors as ml_sub_recv(), and -EBUSY while a view is
 * open. ml_sub_done() returns 0, or -ML_ESTALE if a lossy publisher
 * overwrote the record meanwhile: what was read from it is garbage, and it
 * is counted lost. Any other call of this handle ends the view first.
 */
ML_API int ml_sub_view(ml_sub *s, int *prio, uint64_t *seq, const void **ptr);
ML_API int ml_sub_done(ml_sub *s);
/*
 * Wait up to timeout_ns (< 0: forever) for a record: 0 when there is one
 * (or the lane is corrupt: recv tells), -ETIMEDOUT, -EPIPE when the
 * publisher is gone and all was read.
 */
ML_API int ml_sub_wait(ml_sub *s, int64_t timeout_ns);
/*
 * A descriptor to poll, readable when a record may be there (then call
 * ml_sub_recv until -EAGAIN), as ml_chan_fd(); -ENOTSUP where none.
 */
ML_API int ml_sub_fd(ml_sub *s);

struct ml_sub_stats {
	uint32_t size;
	uint32_t flags;            /* none yet: 0 */
	uint64_t received;         /* records delivered (recv, and views done
				    * without -ML_ESTALE) */
	uint64_t lost;             /* records published but not delivered */
	uint64_t lost_lane[ML_PRIO_COUNT];
	uint32_t poisoned;         /* lanes found corrupt, bit per lane */
	uint32_t policy;           /* the topic's ML_TOPIC_* */
	uint64_t sleeps;           /* times this handle slept in the kernel */
	uint64_t missed_wakeups;   /* sleeps that ran out while a record
				    * waited and the publisher did not ring:
				    * a lost wake-up (should stay 0) */
};
ML_API int ml_sub_stats(ml_sub *s, struct ml_sub_stats *st);
ML_API void ml_sub_close(ml_sub *s);

#ifdef __cplusplus
}
#endif

#endif /* MEMLINK_H */
