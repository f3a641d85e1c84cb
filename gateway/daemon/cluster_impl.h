/*
 * cluster_impl.h - what cluster.c (claims, revocations, leases, liveness)
 * and cluster_state.c (the watch of the shared state and what it applies)
 * share: the cluster itself.  Not part of the daemon's interface; that is
 * cluster.h.
 */
#ifndef CLUSTER_IMPL_H
#define CLUSTER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "cluster.h"

#define CL_LEASES		1024	/* cached leases, by expiry second */
#define CL_NODES_MAX		64
#define CL_KEY_MAX		(64 + 2 * LB_ID_MAX + 2 * JOURNAL_REVOKE_KEY_MAX)

enum cl_lease_state {
	LE_FREE = 0,
	LE_GRANTING,
	LE_READY
};

struct cl_op;

/* The lease of one expiry second, shared by every token of that second. */
struct cl_lease {
	uint64_t		 le_sec;
	int64_t			 le_id;
	enum cl_lease_state	 le_state;
	struct cl_op		*le_wait;	/* ops waiting for the grant */
};

/* Watch messages handed from the client's thread to the main loop, in order. */
struct cl_msg {
	json_t		*cm_res;
	struct cl_msg	*cm_next;
};

/*
 * A cluster node's view of the shared state.  The daemon owns it
 * (gw_cluster, cluster_start to cluster_free); each group of members says
 * which thread may touch it.
 */
struct cluster {
	struct gw		*cl_gw;
	struct etcd		*cl_etcd;
	char			 cl_prefix[16 + LB_ID_MAX];	/* /lianban/ID/ */
	char			 cl_node[LB_ID_MAX];
	/* the lease cache, any thread */
	pthread_mutex_t		 cl_lock;
	struct cl_lease		 cl_leases[CL_LEASES];
	/* the watch's messages waiting for the main loop, under cl_lock */
	struct cl_msg		*cl_inbox, *cl_inbox_tail;
	/* what readiness reads, any thread */
	atomic_bool		 cl_synced;	/* state/ was read once */
	atomic_bool		 cl_down;	/* the last liveness call failed */
	atomic_uint		 cl_live;
	_Atomic uint64_t	 cl_applied[3];	/* revocation, registry, node */
	/* main loop */
	bool			 cl_stopped;	/* cluster_stop: nothing more is applied */
	int64_t			 cl_rev;	/* the last revision of state/ applied */
	bool			 cl_watching;	/* a read or a watch is under way */
	int64_t			 cl_node_lease;	/* 0: none; -1: asked for */
	struct event		*cl_tick;	/* keepalive, and reopening the watch */
	char			 cl_nodes[CL_NODES_MAX][LB_ID_MAX];
	size_t			 cl_nnodes;
};

/* cluster.c */
/* s (n bytes) as a JSON string of standard base64; NULL without memory. */
json_t		*cluster_b64(const char *s, size_t n);

/* cluster_state.c */
/*
 * Reads the whole of state/ (range), applies it and opens the watch from
 * the revision read; on failure the next tick tries again.  Main loop.
 */
void		 cluster_state_sync(struct cluster *);
/* Opens the watch of state/ again from cl_rev + 1.  Main loop. */
void		 cluster_state_watch(struct cluster *);

#endif /* CLUSTER_IMPL_H */
