/*
 * fetch_conn_int: what fetch_conn.c (connecting) and fetch_conn_io.c
 * (reading and writing once open) share. Nothing else includes it.
 */
#ifndef MAILTUNNEL_FETCH_CONN_INT_H
#define MAILTUNNEL_FETCH_CONN_INT_H

#include <event2/util.h>

#include "fetch/fetch_conn.h"

/* fetch_conn.c */
void ft_conn_connected(struct ft_conn *c);
void ft_conn_starttls_step(struct ft_conn *c);
void ft_conn_handshake(struct ft_conn *c);
void ft_conn_set_timer(struct ft_conn *c, unsigned seconds);
/* Run ft_conn_pump() (or report a failure) from the loop. */
void ft_conn_kick(struct ft_conn *c);

/* fetch_conn_io.c */
void ft_conn_event(evutil_socket_t fd, short what, void *arg);
/* The handshake is done: open for the owner. */
void ft_conn_opened(struct ft_conn *c);
/* Write what is queued, hand over what is buffered, read more. */
void ft_conn_pump(struct ft_conn *c);
/* The timer fired while open: a silent server is an error. */
void ft_conn_idle_check(struct ft_conn *c);

#endif
