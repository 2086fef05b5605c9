/* Local runs across processes, started as torchrun --nproc-per-node N starts them (RANK,
 * LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), each worker `bioesp train`
 * with the given arguments: `bioesp train --nproc N` starts all N and waits; the studio is rank 0
 * itself and starts the others. Ctrl-C, SIGTERM or SIGHUP reaches the workers once, through the
 * launcher; a worker that dies is named, and any that outlive the timeout after it are killed. */
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

extern char** environ;

int launch_port(void) {
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

static const char* const kPlace[] = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"};
enum { kPlaces = sizeof kPlace / sizeof *kPlace };

static int is_place(const char* entry) {
  for (int i = 0; i < kPlaces; ++i) {
    const size_t n = strlen(kPlace[i]);
    if (strncmp(entry, kPlace[i], n) == 0 && entry[n] == '=') return 1;
  }
  return 0;
}

/* This process's environment with rank `rank`'s place in it instead of any it had: one
 * allocation (the pointers, then the new entries' text), made before the fork. */
static char** worker_environment(int rank, int nproc, int port) {
  size_t n = 0;
  while (environ[n]) ++n;
  const int values[kPlaces] = {rank, rank, nproc, nproc, -1, port};
  char** env = malloc((n + kPlaces + 1) * sizeof *env + kPlaces * 48);
  if (!env) return NULL;
  char* text = (char*)(env + n + kPlaces + 1);
  size_t k = 0;
  for (size_t i = 0; i < n; ++i)
    if (!is_place(environ[i])) env[k++] = environ[i];
  for (int i = 0; i < kPlaces; ++i, text += 48) {
    if (values[i] < 0) snprintf(text, 48, "%s=127.0.0.1", kPlace[i]);
    else snprintf(text, 48, "%s=%d", kPlace[i], values[i]);
    env[k++] = text;
  }
  env[k] = NULL;
  return env;
}

/* A worker: in a process group of its own (the terminal's Ctrl-C goes to the
 * launcher, which passes it on once), told to stop when the thread that started it ends, with
 * none of the launcher's files but stdin, stdout and stderr (the studio's sockets stay its own).
 * Between fork and exec only async-signal-safe calls: the studio forks from a threaded process. */
static pid_t start_worker(char** args, char** env, int max_fd) {
  static const char cannot[] = "bioesp train: cannot start a worker (exec of /proc/self/exe failed)\n";
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  setpgid(0, 0);
  for (int fd = 3; fd < max_fd; ++fd) close(fd);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);  /* the studio ignores it */
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
  if (getppid() != parent) _exit(1);
  execve("/proc/self/exe", args, env);
  (void)!write(2, cannot, sizeof cannot - 1);
  _exit(127);
}

int start_workers(int first, int nproc, int port, int argc, char** argv, pid_t* pids) {
  char** args = calloc((size_t)argc + 3, sizeof *args);
  if (!args) {
    fprintf(stderr, "bioesp train: out of memory\n");
    return 0;
  }
  args[0] = "bioesp";
  args[1] = "train";
  memcpy(args + 2, argv, (size_t)argc * sizeof *argv);
  const long open_max = sysconf(_SC_OPEN_MAX);
  const int max_fd = open_max > 0 && open_max < 65536 ? (int)open_max : 65536;
  int started = 0;
  for (int r = first; r < nproc; ++r) {
    char** env = worker_environment(r, nproc, port);
    pids[r] = env ? start_worker(args, env, max_fd) : -1;
    free(env);
    if (pids[r] > 0) {
      fprintf(stderr, "bioesp train: rank %d is pid %d\n", r, (int)pids[r]);
      ++started;
      continue;
    }
    fprintf(stderr, "bioesp train: cannot start worker %d: %s\n", r, strerror(errno));
    pids[r] = 0;
  }
  free(args);
  return started;
}

static int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

/* What a rank says when it stops because it was asked to: its interrupt's status. */
static int stopped_as_asked(int code) { return code == 128 + SIGINT || code == 128 + SIGTERM || code == 128 + SIGHUP; }

static void describe(int rank, int status, int ours, char* why, size_t size) {
  if (ours) snprintf(why, size, "rank %d did not end in time and was killed", rank);
  else if (WIFSIGNALED(status))
    snprintf(why, size, "rank %d was killed by signal %d (%s)", rank, WTERMSIG(status), strsignal(WTERMSIG(status)));
  else snprintf(why, size, "rank %d exited with status %d", rank, exit_code(status));
  fprintf(stderr, "bioesp train: %s\n", why);
}

int wait_workers(int first, int nproc, pid_t* pids, double timeout, double grace, int stopping, char* why, size_t size) {
  char scratch[160];
  if (!why || !size) why = scratch, size = sizeof scratch;
  why[0] = '\0';
  int alive = 0, code = 0, stopped = 0, forwarded = 0, killed = 0;
  for (int r = first; r < nproc; ++r) alive += pids[r] > 0;
  double deadline = grace >= 0 ? now() + grace : 0;
  while (alive > 0) {
    for (int r = first; r < nproc; ++r) {
      int status;
      if (pids[r] <= 0 || waitpid(pids[r], &status, WNOHANG) != pids[r]) continue;
      pids[r] = 0;
      --alive;
      const int c = exit_code(status), ours = killed && c == 128 + SIGKILL;
      const int asked = c != 0 && ((stopping && (WIFEXITED(status) || ours)) || (forwarded && stopped_as_asked(c)));
      if (asked) stopped = c;
      if (c == 0 || asked || code) continue;
      code = c;  /* the first to fail is named */
      describe(r, status, ours, why, size);
      if (!deadline) deadline = now() + timeout + 10;  /* the others notice within the timeout */
    }
    if (interrupted() && !forwarded) {
      for (int r = first; r < nproc; ++r)
        if (pids[r] > 0) kill(pids[r], interrupted());
      forwarded = 1;
    }
    if (deadline > 0 && now() > deadline) {
      for (int r = first; r < nproc; ++r)
        if (pids[r] > 0) kill(pids[r], SIGKILL);
      deadline = 0;
      killed = 1;
    }
    if (alive > 0) usleep(20000);
  }
  return code ? code : stopped;
}

int launch_workers(int nproc, int argc, char** argv, double timeout) {
  const int port = launch_port();
  if (port < 0) {
    fprintf(stderr, "bioesp train: no free port for the rendezvous: %s\n", strerror(errno));
    return 1;
  }
  pid_t* pids = calloc((size_t)nproc, sizeof *pids);
  if (!pids) return 1;
  catch_interrupts();
  const int started = start_workers(0, nproc, port, argc, argv, pids);
  const int code = wait_workers(0, nproc, pids, timeout, started < nproc ? timeout + 10 : -1, 0, NULL, 0);
  free(pids);
  if (started < nproc && !code) return 1;
  return code;
}
