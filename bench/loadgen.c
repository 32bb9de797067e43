/*
 * loadgen.c - small single-threaded epoll TCP load generator for echo servers.
 * Adapted from the company's reference harness; adds the churn mode.
 *
 * Build:  cc -O2 -o loadgen/loadgen loadgen.c   (bench/run.ts does it)
 *
 * Modes (-m):
 *   pingpong  C connections; each sends an S-byte message and waits for the
 *             S-byte echo, then sends the next.  Warm-up W s, then timed D s.
 *             Reports messages/s (all connections) and latency p50/p99 (us).
 *   bulk      C connections (default 1); each writes S-byte chunks
 *             continuously while reading the echo back.  Reports MiB/s echoed.
 *   idle      C connections; each sends one short message and waits for its
 *             echo (so the server really accepted/serviced it); then all are
 *             held open for H s (server RSS sampled) and closed.
 *   churn     C slots; each one loops: connect, send one S-byte message, read
 *             its echo, close.  At most C connects are in flight.  Warm-up
 *             W s, then timed D s.  Reports connections/s and the latency of
 *             a whole cycle (connect to echo) p50/p99.
 *
 * Except in churn mode, every connection is opened, and completes one echo
 * round trip ("handshake"), before warm-up/timing starts.  Connect attempts
 * are paced (at most -k in flight) so small listen backlogs do not cause
 * SYN-retransmit storms.
 * All echoed bytes are verified against what was sent (mismatch= counter).
 *
 * With -P PID the server process (and its descendants) is sampled at the
 * start and end of the timed window: CPU% (utime+stime from /proc/PID/stat)
 * and VmRSS (/proc/PID/status).  Per-core busy% (from /proc/stat) and the
 * load generator's own CPU% are printed too, to spot a client bottleneck, and
 * noise_cpu_pct: CPU time that neither the server nor the load generator
 * used, i.e. other programs that shared the machine during the window.
 *
 * In pingpong mode a CONN_MSGS line lists the messages each connection
 * completed in the timed window, least first (fairness, charted by run.ts).
 *
 * The last line printed is machine readable:
 *   RESULT mode=pingpong conns=100 size=64 msgs_per_s=... p50_us=... p99_us=...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { M_PINGPONG, M_BULK, M_IDLE, M_CHURN };
enum { CS_IDLE, CS_CONNECTING, CS_HS, CS_READY, CS_RUN, CS_DRAIN, CS_DEAD };
enum { PH_SETUP, PH_WARM, PH_TIMED, PH_DONE };

typedef struct {
  int fd;
  int state;
  uint32_t seq;        /* message number (selects the byte pattern) */
  size_t woff, roff;   /* progress within the current message */
  uint64_t t0;         /* when the current message was sent (ns) */
  uint64_t sent, rcvd; /* bulk: stream byte counters */
  uint64_t done;       /* pingpong: messages completed in the timed window */
} conn_t;

static int mode = M_PINGPONG;
static const char *host = "127.0.0.1";
static int port = 0;
static int nconns = 1;
static size_t msize = 0;
static double dur = 5.0, warm = 1.0, hold = 3.0, setup_timeout = 120.0;
static int max_inflight = 256;
static pid_t srv_pid = 0;
static size_t window = 8u << 20;

static uint8_t *pattern;
static uint8_t *rbuf;
static size_t rbuf_len;
static conn_t *cs;
static int epfd;
static struct sockaddr_in saddr;

static int phase = PH_SETUP;
static uint64_t n_conn_err, n_run_err, n_mismatch, n_msgs, bulk_bytes;
static int first_conn_errno;
static uint64_t *lat;
static size_t nlat, caplat;

#define MAXEV 1024

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(2);
}

/* ------------------------------------------------------------ sampling */

typedef struct {
  uint64_t t;
  uint64_t srv_ticks;
  long srv_rss_kb;
  int srv_nproc;
  uint64_t self_us;
  int ncpu;
  uint64_t busy[64], total[64];
  uint64_t usr[64], sys[64], si[64], st[64];
} sample_t;

static long read_vmrss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) { kb = strtol(line + 6, NULL, 10); break; }
  fclose(f);
  return kb;
}

/* parse /proc/PID/stat: ppid and utime+stime */
static int read_stat(pid_t pid, pid_t *ppid, uint64_t *ticks) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  p += 2; /* state */
  char st;
  long pp;
  unsigned long long f[12];
  /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (sscanf(p, "%c %ld %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &st, &pp,
             &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10]) != 13)
    return -1;
  *ppid = (pid_t)pp;
  *ticks = f[9] + f[10];
  return 0;
}

/* server pid plus all its descendants: total cpu ticks and VmRSS */
static void sample_server(sample_t *s) {
  s->srv_ticks = 0; s->srv_rss_kb = 0; s->srv_nproc = 0;
  if (srv_pid <= 0) return;
  enum { MAXP = 8192 };
  static pid_t pids[MAXP], ppids[MAXP];
  static uint64_t tk[MAXP];
  static char in[MAXP];
  int n = 0;
  DIR *d = opendir("/proc");
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d)) && n < MAXP) {
    if (!isdigit((unsigned char)de->d_name[0])) continue;
    pid_t p = (pid_t)atoi(de->d_name), pp;
    uint64_t t;
    if (read_stat(p, &pp, &t) == 0) { pids[n] = p; ppids[n] = pp; tk[n] = t; in[n] = (p == srv_pid); n++; }
  }
  closedir(d);
  for (int changed = 1; changed;) {
    changed = 0;
    for (int i = 0; i < n; i++) {
      if (in[i]) continue;
      for (int j = 0; j < n; j++)
        if (in[j] && pids[j] == ppids[i]) { in[i] = 1; changed = 1; break; }
    }
  }
  for (int i = 0; i < n; i++) {
    if (!in[i]) continue;
    s->srv_ticks += tk[i];
    long kb = read_vmrss_kb(pids[i]);
    if (kb > 0) s->srv_rss_kb += kb;
    s->srv_nproc++;
  }
}

static int srv_alive(void) {
  if (srv_pid <= 0) return -1;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)srv_pid);
  pid_t pp;
  uint64_t t;
  if (read_stat(srv_pid, &pp, &t) < 0) return 0;
  /* a zombie (state Z) counts as dead */
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  return !(p && (p[2] == 'Z' || p[2] == 'X'));
}

static void sample_all(sample_t *s) {
  s->t = now_ns();
  sample_server(s);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  s->self_us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
               (uint64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
  s->ncpu = 0;
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    int id;
    unsigned long long v[8] = {0};
    if (strncmp(line, "cpu", 3) || !isdigit((unsigned char)line[3])) continue;
    if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &id, &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7]) < 9 || id >= 64)
      continue;
    s->busy[id] = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    s->usr[id] = v[0] + v[1];
    s->sys[id] = v[2];
    s->si[id] = v[5] + v[6];
    s->st[id] = v[7];
    s->total[id] = s->busy[id] + v[3] + v[4];
    if (id + 1 > s->ncpu) s->ncpu = id + 1;
  }
  fclose(f);
}

static char cpu_fields[512], cpu_detail[1024];
static void format_cpu(const sample_t *a, const sample_t *b) {
  double secs = (double)(b->t - a->t) / 1e9;
  long hz = sysconf(_SC_CLK_TCK);
  char cores[256] = "";
  size_t off = 0, doff = 0;
  double busy_sum = 0;
  for (int i = 0; i < b->ncpu && i < a->ncpu && i < 64; i++) {
    uint64_t tot = b->total[i] - a->total[i];
    double k = tot ? 100.0 / (double)tot : 0;
    double pct = k * (double)(b->busy[i] - a->busy[i]);
    busy_sum += pct;
    off += snprintf(cores + off, sizeof cores - off, "%s%.0f", i ? "/" : "", pct);
    if (doff < sizeof cpu_detail - 100)
      doff += snprintf(cpu_detail + doff, sizeof cpu_detail - doff,
                       "%score%d busy %.0f%% (usr %.0f sys %.0f irq+softirq %.0f steal %.0f)", i ? ", " : "", i,
                       pct, k * (double)(b->usr[i] - a->usr[i]), k * (double)(b->sys[i] - a->sys[i]),
                       k * (double)(b->si[i] - a->si[i]), k * (double)(b->st[i] - a->st[i]));
  }
  double srv = srv_pid > 0 ? 100.0 * (double)(b->srv_ticks - a->srv_ticks) / hz / secs : -1;
  double cli = 100.0 * (double)(b->self_us - a->self_us) / 1e6 / secs;
  /* noise: busy time of all cores (softirq included: the kernel charges part
   * of the network work to the processes, part to softirq) beyond what the
   * server and this process used, i.e. other programs sharing the machine;
   * within +-10 when nothing else runs */
  double noise = busy_sum - srv - cli;
  if (noise < 0) noise = 0;
  snprintf(cpu_fields, sizeof cpu_fields,
           "srv_cpu_pct=%.0f cli_cpu_pct=%.0f noise_cpu_pct=%.0f core_busy_pct=%s", srv, cli, noise, cores);
}

/* ------------------------------------------------------------ connections */

static void conn_close(conn_t *c, int newstate) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->state = newstate;
}

static int start_connect(int i) {
  conn_t *c = &cs[i];
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket (raise ulimit -n?)");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->state = CS_CONNECTING;
  if (connect(c->fd, (struct sockaddr *)&saddr, sizeof saddr) < 0 && errno != EINPROGRESS) {
    if (!first_conn_errno) first_conn_errno = errno;
    n_conn_err++;
    conn_close(c, CS_DEAD);
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u32 = (uint32_t)i};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
  return 0;
}

/* write the rest of the current message; 0 ok / would block, -1 error */
static int msg_write(conn_t *c, size_t len) {
  const uint8_t *msg = pattern + (c->seq & 0xff);
  while (c->woff < len) {
    ssize_t w = send(c->fd, msg + c->woff, len - c->woff, MSG_NOSIGNAL);
    if (w > 0) c->woff += (size_t)w;
    else if (w < 0 && errno == EINTR) continue;
    else if (w < 0 && errno == EAGAIN) return 0;
    else return -1;
  }
  return 0;
}

/* read the echo of the current message; 1 complete, 0 pending, -1 error/EOF */
static int msg_read(conn_t *c, size_t len) {
  const uint8_t *msg = pattern + (c->seq & 0xff);
  while (c->roff < len) {
    ssize_t r = recv(c->fd, rbuf, len - c->roff, 0);
    if (r > 0) {
      if (memcmp(rbuf, msg + c->roff, (size_t)r)) n_mismatch++;
      c->roff += (size_t)r;
    } else if (r < 0 && errno == EINTR) continue;
    else if (r < 0 && errno == EAGAIN) return 0;
    else return -1;
  }
  return 1;
}

static void msg_start(conn_t *c, size_t len, uint64_t t) {
  c->seq++;
  c->woff = c->roff = 0;
  c->t0 = t;
  if (msg_write(c, len) < 0) { n_run_err++; conn_close(c, CS_DEAD); }
}

static int bulk_write(conn_t *c) {
  while (c->sent - c->rcvd < window) {
    ssize_t w = send(c->fd, pattern + (c->sent & 0xff), msize, MSG_NOSIGNAL);
    if (w > 0) c->sent += (uint64_t)w;
    else if (w < 0 && errno == EINTR) continue;
    else if (w < 0 && errno == EAGAIN) return 0;
    else return -1;
  }
  return 0;
}

static int bulk_read(conn_t *c) {
  for (;;) {
    ssize_t r = recv(c->fd, rbuf, rbuf_len, 0);
    if (r > 0) {
      if (memcmp(rbuf, pattern + (c->rcvd & 0xff), (size_t)r)) n_mismatch++;
      c->rcvd += (uint64_t)r;
      if (phase == PH_TIMED) bulk_bytes += (uint64_t)r;
      if ((size_t)r < rbuf_len) return 0; /* drained (ET: next arrival re-arms) */
    } else if (r < 0 && errno == EINTR) continue;
    else if (r < 0 && errno == EAGAIN) return 0;
    else return -1;
  }
}

static void record_latency(uint64_t ns) {
  if (nlat == caplat) {
    caplat = caplat ? caplat * 2 : 1 << 16;
    lat = realloc(lat, caplat * sizeof *lat);
    if (!lat) die("realloc");
  }
  lat[nlat++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static size_t hs_len(void) { return mode == M_BULK ? 64 : msize; }

/* latency percentiles in microseconds: p50, p99, p99.9, max */
static void latency_summary(double out[4]) {
  out[0] = out[1] = out[2] = out[3] = 0;
  if (!nlat) return;
  qsort(lat, nlat, sizeof *lat, cmp_u64);
  out[0] = lat[(size_t)((nlat - 1) * 0.50)] / 1e3;
  out[1] = lat[(size_t)((nlat - 1) * 0.99)] / 1e3;
  out[2] = lat[(size_t)((nlat - 1) * 0.999)] / 1e3;
  out[3] = lat[nlat - 1] / 1e3;
}

/* ------------------------------------------------------------ phases */

static int setup(void) {
  struct epoll_event evs[MAXEV];
  int next = 0, inflight = 0, established = 0, failed = 0;
  uint64_t deadline = now_ns() + (uint64_t)(setup_timeout * 1e9);
  while (established + failed < nconns) {
    while (inflight < max_inflight && next < nconns) {
      if (start_connect(next++) == 0) inflight++;
      else failed++;
    }
    int n = epoll_wait(epfd, evs, MAXEV, 50);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      conn_t *c = &cs[evs[k].data.u32];
      uint32_t e = evs[k].events;
      if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        if (!(e & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (e & (EPOLLERR | EPOLLHUP))) {
          if (!first_conn_errno) first_conn_errno = err ? err : ECONNRESET;
          n_conn_err++; failed++; inflight--;
          conn_close(c, CS_DEAD);
          continue;
        }
        c->state = CS_HS;
        c->woff = c->roff = 0;
        c->t0 = now_ns();
        if (msg_write(c, hs_len()) < 0) goto fail;
        if (!(e & EPOLLIN)) continue;
      }
      if (c->state == CS_HS) {
        int r = 0;
        if ((e & EPOLLOUT) && msg_write(c, hs_len()) < 0) r = -1;
        if (r == 0 && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) r = msg_read(c, hs_len());
        if (r == 1) { c->state = CS_READY; established++; inflight--; }
        else if (r < 0 || (e & (EPOLLHUP | EPOLLERR))) goto fail;
        continue;
      }
      continue;
    fail:
      if (!first_conn_errno) first_conn_errno = errno ? errno : ECONNRESET;
      n_conn_err++; failed++; inflight--;
      conn_close(c, CS_DEAD);
    }
    if (now_ns() > deadline) {
      for (int i = 0; i < nconns; i++)
        if (cs[i].state == CS_CONNECTING || cs[i].state == CS_HS || cs[i].state == CS_IDLE) {
          if (!first_conn_errno) first_conn_errno = ETIMEDOUT;
          n_conn_err++; failed++;
          conn_close(&cs[i], CS_DEAD);
        }
      break;
    }
  }
  return established;
}

/* shut down write side, read until EOF (max 2 s), close everything */
static void drain_close(void) {
  struct epoll_event evs[MAXEV];
  int live = 0;
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &cs[i];
    if (c->fd < 0) continue;
    shutdown(c->fd, SHUT_WR);
    c->state = CS_DRAIN;
    live++;
  }
  /* process any already-pending data first (ET: no new edge may come) */
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &cs[i];
    if (c->fd < 0) continue;
    for (;;) {
      ssize_t r = recv(c->fd, rbuf, rbuf_len, 0);
      if (r > 0) continue;
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == EAGAIN) break;
      conn_close(c, CS_DEAD); live--;
      break;
    }
  }
  uint64_t deadline = now_ns() + 2000000000ull;
  while (live > 0 && now_ns() < deadline) {
    int n = epoll_wait(epfd, evs, MAXEV, 50);
    for (int k = 0; k < n; k++) {
      conn_t *c = &cs[evs[k].data.u32];
      if (c->fd < 0) continue;
      for (;;) {
        ssize_t r = recv(c->fd, rbuf, rbuf_len, 0);
        if (r > 0) continue;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        conn_close(c, CS_DEAD); live--;
        break;
      }
    }
  }
  for (int i = 0; i < nconns; i++)
    if (cs[i].fd >= 0) conn_close(&cs[i], CS_DEAD);
}

static void run_timed(sample_t *s0, sample_t *s1) {
  struct epoll_event evs[MAXEV];
  uint64_t t = now_ns();
  uint64_t t_end = t + (uint64_t)(warm * 1e9);
  phase = warm > 0 ? PH_WARM : PH_TIMED;
  if (phase == PH_TIMED) { sample_all(s0); t_end = s0->t + (uint64_t)(dur * 1e9); }
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &cs[i];
    if (c->state != CS_READY) continue;
    c->state = CS_RUN;
    if (mode == M_PINGPONG) msg_start(c, msize, now_ns());
    else if (bulk_write(c) < 0) { n_run_err++; conn_close(c, CS_DEAD); }
  }
  while (phase != PH_DONE) {
    int n = epoll_wait(epfd, evs, MAXEV, 10);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      conn_t *c = &cs[evs[k].data.u32];
      uint32_t e = evs[k].events;
      if (c->state != CS_RUN) continue;
      if (mode == M_PINGPONG) {
        if ((e & EPOLLOUT) && c->woff < msize && msg_write(c, msize) < 0) goto err;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
          int r = msg_read(c, msize);
          if (r < 0) goto err;
          if (r == 1) {
            uint64_t tn = now_ns();
            if (phase == PH_TIMED) { n_msgs++; c->done++; record_latency(tn - c->t0); }
            msg_start(c, msize, tn);
          }
        }
      } else {
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
          if (bulk_read(c) < 0) goto err;
        }
        if (bulk_write(c) < 0) goto err;
      }
      continue;
    err:
      n_run_err++;
      conn_close(c, CS_DEAD);
    }
    t = now_ns();
    if (t >= t_end) {
      if (phase == PH_WARM) {
        sample_all(s0);
        phase = PH_TIMED;
        t_end = s0->t + (uint64_t)(dur * 1e9);
      } else {
        sample_all(s1);
        phase = PH_DONE;
      }
    }
  }
}

/* churn: every slot loops connect -> one echo -> close; a slot whose connect
 * failed (or that just finished) restarts after the current epoll batch, so a
 * refused or exhausted connect cannot spin faster than one try per wait. */
static void run_churn(sample_t *s0, sample_t *s1) {
  struct epoll_event evs[MAXEV];
  uint64_t t_end = now_ns() + (uint64_t)(warm * 1e9);
  phase = warm > 0 ? PH_WARM : PH_TIMED;
  if (phase == PH_TIMED) { sample_all(s0); t_end = s0->t + (uint64_t)(dur * 1e9); }
  for (int i = 0; i < nconns; i++) cs[i].state = CS_IDLE;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= t_end) {
      if (phase == PH_WARM) {
        sample_all(s0);
        phase = PH_TIMED;
        t_end = s0->t + (uint64_t)(dur * 1e9);
      } else {
        sample_all(s1);
        phase = PH_DONE;
        return;
      }
    }
    for (int i = 0; i < nconns; i++) {
      conn_t *c = &cs[i];
      if (c->state != CS_IDLE) continue;
      c->seq++;
      c->woff = c->roff = 0;
      c->t0 = now_ns();
      if (start_connect(i) < 0) c->state = CS_IDLE;
    }
    int n = epoll_wait(epfd, evs, MAXEV, 10);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      conn_t *c = &cs[evs[k].data.u32];
      uint32_t e = evs[k].events;
      if (c->fd < 0) continue;
      if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        if (!(e & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (e & (EPOLLERR | EPOLLHUP))) {
          if (!first_conn_errno) first_conn_errno = err ? err : ECONNRESET;
          n_conn_err++;
          conn_close(c, CS_IDLE);
          continue;
        }
        c->state = CS_HS;
        if (msg_write(c, msize) < 0) goto err;
        if (!(e & EPOLLIN)) continue;
      }
      if (c->state == CS_HS) {
        int r = 0;
        if ((e & EPOLLOUT) && msg_write(c, msize) < 0) r = -1;
        if (r == 0 && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) r = msg_read(c, msize);
        if (r == 1) {
          if (phase == PH_TIMED) { n_msgs++; record_latency(now_ns() - c->t0); }
          conn_close(c, CS_IDLE);
        } else if (r < 0 || (e & (EPOLLHUP | EPOLLERR))) goto err;
      }
      continue;
    err:
      n_run_err++;
      conn_close(c, CS_IDLE);
    }
  }
}

/* idle: hold the established connections, watching for unexpected closes */
static void idle_wait(double secs) {
  struct epoll_event evs[MAXEV];
  uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
  while (now_ns() < end) {
    int n = epoll_wait(epfd, evs, MAXEV, 50);
    for (int k = 0; k < n; k++) {
      conn_t *c = &cs[evs[k].data.u32];
      if (c->fd < 0 || !(evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) continue;
      ssize_t r = recv(c->fd, rbuf, rbuf_len, 0);
      if (r > 0) { n_mismatch++; continue; } /* unsolicited data */
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      n_run_err++;
      conn_close(c, CS_DEAD);
    }
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen -m pingpong|bulk|idle|churn -p PORT [-h HOST] [-c CONNS] [-s SIZE]\n"
          "               [-d SECS] [-w WARMUP] [-t HOLD] [-P SERVER_PID] [-k MAX_INFLIGHT_CONNECTS]\n"
          "               [-T SETUP_TIMEOUT] [-W BULK_WINDOW_BYTES]\n"
          "defaults: host 127.0.0.1, conns 1, size 64 (bulk 65536, idle 32), d 5, w 1, t 3, k 256, T 120\n"
          "churn: CONNS is the number of concurrent connect/echo/close cycles\n");
  exit(2);
}

int main(int argc, char **argv) {
  int o;
  while ((o = getopt(argc, argv, "m:h:p:c:s:d:w:t:P:k:T:W:")) != -1) {
    switch (o) {
    case 'm':
      if (!strcmp(optarg, "pingpong")) mode = M_PINGPONG;
      else if (!strcmp(optarg, "bulk")) mode = M_BULK;
      else if (!strcmp(optarg, "idle")) mode = M_IDLE;
      else if (!strcmp(optarg, "churn")) mode = M_CHURN;
      else usage();
      break;
    case 'h': host = optarg; break;
    case 'p': port = atoi(optarg); break;
    case 'c': nconns = atoi(optarg); break;
    case 's': msize = (size_t)strtoul(optarg, NULL, 10); break;
    case 'd': dur = atof(optarg); break;
    case 'w': warm = atof(optarg); break;
    case 't': hold = atof(optarg); break;
    case 'P': srv_pid = (pid_t)atoi(optarg); break;
    case 'k': max_inflight = atoi(optarg); break;
    case 'T': setup_timeout = atof(optarg); break;
    case 'W': window = (size_t)strtoull(optarg, NULL, 10); break;
    default: usage();
    }
  }
  if (port <= 0 || nconns <= 0 || dur <= 0) usage();
  if (!msize) msize = mode == M_BULK ? 65536 : mode == M_IDLE ? 32 : 64;
  if (max_inflight < 1) max_inflight = 1;
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* file descriptors */
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t need = (rlim_t)nconns + 64;
  if (rl.rlim_cur < need) {
    if (rl.rlim_max < need) rl.rlim_max = need; /* only works with privileges */
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
      getrlimit(RLIMIT_NOFILE, &rl);
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
      fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE limited to %llu (< %llu needed)\n",
              (unsigned long long)rl.rlim_max, (unsigned long long)need);
    }
  }

  memset(&saddr, 0, sizeof saddr);
  saddr.sin_family = AF_INET;
  saddr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &saddr.sin_addr) != 1) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res)) { fprintf(stderr, "loadgen: cannot resolve %s\n", host); return 2; }
    saddr.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
  }

  rbuf_len = 256 * 1024;
  if (rbuf_len < msize) rbuf_len = msize;
  pattern = malloc(256 + rbuf_len + msize);
  rbuf = malloc(rbuf_len);
  cs = calloc((size_t)nconns, sizeof *cs);
  if (!pattern || !rbuf || !cs) die("malloc");
  for (size_t i = 0; i < 256 + rbuf_len + msize; i++) pattern[i] = (uint8_t)i;
  for (int i = 0; i < nconns; i++) { cs[i].fd = -1; cs[i].seq = (uint32_t)i * 37u; }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");

  const char *mname = mode == M_PINGPONG ? "pingpong" : mode == M_BULK ? "bulk" : mode == M_IDLE ? "idle" : "churn";
  sample_t s_before, s0, s1;
  sample_all(&s_before);

  if (mode == M_CHURN) {
    run_churn(&s0, &s1);
    int alive = srv_alive();
    drain_close();
    format_cpu(&s0, &s1);
    double secs = (double)(s1.t - s0.t) / 1e9, l[4];
    latency_summary(l);
    double rate = (double)n_msgs / secs;
    printf("%llu connections in %.2f s: %.0f conns/s, cycle latency p50 %.1f us p99 %.1f us max %.1f us "
           "(connect errors: %llu%s%s)\n", (unsigned long long)n_msgs, secs, rate, l[0], l[1], l[3],
           (unsigned long long)n_conn_err, first_conn_errno ? ", first: " : "",
           first_conn_errno ? strerror(first_conn_errno) : "");
    printf("%s srv_rss_kb=%ld\n%s\n", cpu_fields, s1.srv_rss_kb, cpu_detail);
    printf("RESULT mode=churn conns=%d size=%zu conns_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
           "max_us=%.0f conn_errors=%llu run_errors=%llu mismatch=%llu first_errno=%d %s srv_rss_kb=%ld "
           "srv_alive=%d\n", nconns, msize, rate, l[0], l[1], l[2], l[3], (unsigned long long)n_conn_err,
           (unsigned long long)n_run_err, (unsigned long long)n_mismatch, first_conn_errno, cpu_fields,
           s1.srv_rss_kb, alive);
    return (n_msgs == 0 || n_run_err || n_mismatch) ? 1 : 0;
  }

  uint64_t t_setup = now_ns();
  int est = setup();
  double setup_s = (double)(now_ns() - t_setup) / 1e9;
  printf("established %d/%d connections in %.2f s (connect errors: %llu%s%s)\n", est, nconns, setup_s,
         (unsigned long long)n_conn_err, first_conn_errno ? ", first: " : "",
         first_conn_errno ? strerror(first_conn_errno) : "");

  if (mode == M_IDLE) {
    idle_wait(1.0); /* let the server settle */
    sample_all(&s0);
    idle_wait(hold > 1.0 ? hold - 1.0 : 0.0);
    sample_all(&s1);
    long during = s1.srv_rss_kb > s0.srv_rss_kb ? s1.srv_rss_kb : s0.srv_rss_kb;
    int alive = srv_alive();
    drain_close();
    double per = est > 0 && alive > 0 ? (double)(during - s_before.srv_rss_kb) / est : -1;
    if (alive == 0) { during = -1; printf("server process %d is gone!\n", (int)srv_pid); }
    printf("server VmRSS: before %ld KiB, with %d idle conns %ld KiB (%.2f KiB/conn)\n",
           s_before.srv_rss_kb, est, during, per);
    printf("RESULT mode=idle conns=%d established=%d conn_errors=%llu run_errors=%llu mismatch=%llu "
           "setup_s=%.2f rss_before_kb=%ld rss_during_kb=%ld kb_per_conn=%.2f srv_alive=%d\n",
           nconns, est, (unsigned long long)n_conn_err, (unsigned long long)n_run_err,
           (unsigned long long)n_mismatch, setup_s, s_before.srv_rss_kb, during, per, alive);
    return est == nconns ? 0 : 1;
  }

  if (est == 0) {
    printf("RESULT mode=%s conns=%d size=%zu established=0 conn_errors=%llu error=no_connections "
           "srv_alive=%d\n", mname, nconns, msize, (unsigned long long)n_conn_err, srv_alive());
    return 1;
  }

  run_timed(&s0, &s1);
  int alive = srv_alive();
  drain_close();
  format_cpu(&s0, &s1);
  double secs = (double)(s1.t - s0.t) / 1e9;
  if (mode == M_PINGPONG) {
    double l[4];
    latency_summary(l);
    double p50 = l[0], p99 = l[1], p999 = l[2], mx = l[3];
    double rate = (double)n_msgs / secs;
    /* fairness: messages per connection in the timed window */
    uint64_t *pc = malloc((size_t)nconns * sizeof *pc);
    size_t npc = 0;
    for (int i = 0; i < nconns; i++)
      if (cs[i].seq != (uint32_t)i * 37u) pc[npc++] = cs[i].done; /* connections that ran */
    qsort(pc, npc, sizeof *pc, cmp_u64);
    uint64_t pc_min = npc ? pc[0] : 0, pc_med = npc ? pc[npc / 2] : 0, pc_max = npc ? pc[npc - 1] : 0;
    /* every connection's count, least served first: bench/run.ts charts it */
    fputs("CONN_MSGS", stdout);
    for (size_t i = 0; i < npc; i++) printf(" %llu", (unsigned long long)pc[i]);
    putchar('\n');
    free(pc);
    printf("%llu messages in %.2f s: %.0f msgs/s, latency p50 %.1f us p99 %.1f us p99.9 %.1f us max %.1f us\n",
           (unsigned long long)n_msgs, secs, rate, p50, p99, p999, mx);
    printf("messages per connection: min %llu median %llu max %llu\n", (unsigned long long)pc_min,
           (unsigned long long)pc_med, (unsigned long long)pc_max);
    printf("%s srv_rss_kb=%ld\n%s\n", cpu_fields, s1.srv_rss_kb, cpu_detail);
    printf("RESULT mode=pingpong conns=%d size=%zu established=%d msgs_per_s=%.0f p50_us=%.1f "
           "p99_us=%.1f p999_us=%.1f conn_errors=%llu run_errors=%llu mismatch=%llu %s srv_rss_kb=%ld "
           "srv_alive=%d conn_msgs_min=%llu conn_msgs_med=%llu conn_msgs_max=%llu max_us=%.0f\n",
           nconns, msize, est, rate, p50, p99, p999, (unsigned long long)n_conn_err,
           (unsigned long long)n_run_err, (unsigned long long)n_mismatch, cpu_fields, s1.srv_rss_kb, alive,
           (unsigned long long)pc_min, (unsigned long long)pc_med, (unsigned long long)pc_max, mx);
  } else {
    double mibs = (double)bulk_bytes / secs / (1024.0 * 1024.0);
    printf("%.1f MiB echoed in %.2f s: %.1f MiB/s\n", (double)bulk_bytes / 1048576.0, secs, mibs);
    printf("%s srv_rss_kb=%ld\n%s\n", cpu_fields, s1.srv_rss_kb, cpu_detail);
    printf("RESULT mode=bulk conns=%d size=%zu established=%d mib_per_s=%.1f conn_errors=%llu "
           "run_errors=%llu mismatch=%llu %s srv_rss_kb=%ld srv_alive=%d\n",
           nconns, msize, est, mibs, (unsigned long long)n_conn_err, (unsigned long long)n_run_err,
           (unsigned long long)n_mismatch, cpu_fields, s1.srv_rss_kb, alive);
  }
  return (n_conn_err || n_run_err || n_mismatch) ? 1 : 0;
}
