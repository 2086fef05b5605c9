/* bioesp train --nproc N: N training processes on this machine, started as torchrun
 * --nproc-per-node N starts them (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
 * MASTER_PORT), each one `bioesp train` with the same arguments. Ctrl-C, SIGTERM or SIGHUP reaches
 * the workers once, through the launcher; a worker that dies is named, and any that outlive the timeout after it
 * are killed. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli.h"

/* A port the kernel says is free on the loopback, for rank 0's rendezvous. */
static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  int port = -1;
  if (bind(s, (struct sockaddr*)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr*)&a, &n) == 0) port = ntohs(a.sin_port);
  close(s);
  return port;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* The worker of rank `rank`: in a process group of its own (the terminal's Ctrl-C goes to the
 * launcher, which passes it on once), told to stop when the launcher dies. */
static pid_t start_worker(int rank, int nproc, int port, int argc, char** argv) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  setpgid(0, 0);
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
  if (getppid() != parent) _exit(1);
  char text[32];
  snprintf(text, sizeof text, "%d", rank);
  setenv("RANK", text, 1);
  setenv("LOCAL_RANK", text, 1);
  snprintf(text, sizeof text, "%d", nproc);
  setenv("WORLD_SIZE", text, 1);
  setenv("LOCAL_WORLD_SIZE", text, 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  snprintf(text, sizeof text, "%d", port);
  setenv("MASTER_PORT", text, 1);
  char** args = calloc((size_t)argc + 3, sizeof *args);
  if (!args) _exit(127);
  args[0] = "bioesp";
  args[1] = "train";
  memcpy(args + 2, argv, (size_t)argc * sizeof *argv);
  execv("/proc/self/exe", args);
  fprintf(stderr, "bioesp train: cannot start worker %d: %s\n", rank, strerror(errno));
  _exit(127);
}

static int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

int launch_workers(int nproc, int argc, char** argv, double timeout) {
  const int port = free_port();
  if (port < 0) {
    fprintf(stderr, "bioesp train: no free port for the rendezvous: %s\n", strerror(errno));
    return 1;
  }
  pid_t* pids = calloc((size_t)nproc, sizeof *pids);
  int* codes = calloc((size_t)nproc, sizeof *codes);
  if (!pids || !codes) return 1;
  catch_interrupts();
  int alive = 0, failed = -1, forwarded = 0;
  for (int r = 0; r < nproc; ++r) {
    pids[r] = start_worker(r, nproc, port, argc, argv);
    if (pids[r] > 0) {
      fprintf(stderr, "bioesp train: rank %d is pid %d\n", r, (int)pids[r]);
      ++alive;
      continue;
    }
    fprintf(stderr, "bioesp train: cannot start worker %d: %s\n", r, strerror(errno));
    pids[r] = 0;
    codes[r] = failed < 0 ? 1 : codes[r];
    if (failed < 0) failed = r;
  }
  double deadline = failed >= 0 ? now() + timeout + 10 : 0;
  while (alive > 0) {
    int status;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p > 0) {
      for (int r = 0; r < nproc; ++r) {
        if (pids[r] != p) continue;
        pids[r] = 0;
        --alive;
        codes[r] = exit_code(status);
        if (codes[r] == 0 || (forwarded && codes[r] == interrupted_status()) || failed >= 0) break;
        failed = r;
        if (WIFSIGNALED(status)) fprintf(stderr, "bioesp train: rank %d was killed by signal %d (%s)\n", r, WTERMSIG(status), strsignal(WTERMSIG(status)));
        else fprintf(stderr, "bioesp train: rank %d exited with status %d\n", r, codes[r]);
        deadline = now() + timeout + 10;  /* the others notice within the timeout */
      }
      continue;
    }
    if (interrupted() && !forwarded) {
      for (int r = 0; r < nproc; ++r)
        if (pids[r] > 0) kill(pids[r], interrupted());
      forwarded = 1;
    }
    if (deadline > 0 && now() > deadline) {
      for (int r = 0; r < nproc; ++r)
        if (pids[r] > 0) kill(pids[r], SIGKILL);
      deadline = 0;
    }
    usleep(20000);
  }
  int code = failed >= 0 ? codes[failed] : 0;
  for (int r = 0; r < nproc && code == 0; ++r) code = codes[r];
  free(pids);
  free(codes);
  return code;
}
