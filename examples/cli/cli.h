/* Helpers shared by the bioesp commands. */
#ifndef BIOESP_CLI_H
#define BIOESP_CLI_H

#include <bioesp.h>
#include <stdint.h>
#include <sys/types.h>

#include "options.h"

/* Prints "bioesp: WHAT: <last error>" and returns 1. */
int fail_with(const char* what);
void print_log(void* user, bioesp_log_level level, const char* message);
/* 1 on success; otherwise prints why and returns 0. */
int parse_long(const char* flag, const char* text, long* out);
uint64_t random_seed(void);
/* Ctrl-C, SIGTERM and SIGHUP set a flag the progress callbacks read, so the work stops cleanly
 * (a training writes its checkpoint first). */
void catch_interrupts(void);
/* The signal that arrived, or 0. */
int interrupted(void);
/* The exit status after an interrupt: 128 + the signal (130 for Ctrl-C). */
int interrupted_status(void);

/* What generate and animate attach to the model before drawing: --lora and --embedding values. */
typedef struct cli_attached {
  cli_list loras;
  cli_list embeddings;
} cli_attached;
void cli_attached_free(cli_attached* a);

/* The flags generate and animate share: the model (a const char*), its LoRAs and embeddings (a
 * cli_attached). */
#define CLI_MODEL_FLAGS(model_path, attached)                                                                  \
  {"model", "DIR|FILE|ID", "diffusers folder, single file or Hub id ORG/NAME[@REV] (default $BIOESP_MODEL, else " \
   "the embedded model)", cli_text, model_path},                                                              \
      {"lora", "FILE|ID[:SCALE]", "a LoRA to draw with (repeatable)", cli_append, &(attached)->loras},          \
      {"embedding", "FILE[:TOKEN]",                                                                           \
       "a textual-inversion embedding (.pt, .safetensors) for TOKEN (default: the file's own, else its stem; "   \
       "repeatable)", cli_append, &(attached)->embeddings}
/* `given` (--model or $BIOESP_MODEL) when set, else the embedded model; NULL after saying so. */
const char* model_or_embedded(const char* command, const char* given);
/* Attaches the FILE|ID[:SCALE] LoRAs as lora0, lora1, … and the FILE[:TOKEN] embeddings (a FILE
 * that exists as given is taken whole); 0 (after printing why) on failure. */
int attach_all(bioesp_model* model, const cli_attached* a);
/* A denoising-steps progress bar (generate, animate); `user` points to an int "quiet" flag;
 * asks to stop after Ctrl-C. */
int steps_progress(void* user, const bioesp_progress* p);
/* A files progress bar (fetch, prepare, pull, push); `user` points to an int "quiet" flag. */
int files_progress(void* user, const bioesp_progress* p);

/* Local runs across processes (launch.c). bioesp train --nproc N: runs `bioesp train ARGS` as N
 * ranks on this machine and returns the exit code (a failed rank's, else 0, or the interrupt's
 * status after Ctrl-C, SIGTERM or SIGHUP, which reach every worker once). */
int launch_workers(int nproc, int argc, char** argv, double timeout);
/* A free loopback port for rank 0's rendezvous, or -1. */
int launch_port(void);
/* Ranks first to nproc - 1 as `bioesp train ARGS` workers, told their place by torchrun's
 * variables (the rendezvous at 127.0.0.1:port); pids[rank] gets each one's pid (0 where it could
 * not start, said on stderr). Safe from a threaded process; the workers get SIGTERM when the
 * calling thread ends. Returns how many started. */
int start_workers(int first, int nproc, int port, int argc, char** argv, pid_t* pids);
/* Waits for the workers pids[first..nproc) to end and returns the first failure's exit status
 * (else that of a rank stopped as asked, else 0); `why` (may be NULL) gets its words ("rank 1 was
 * killed by signal 9 (Killed)"), also said on stderr. Kills those left `grace` seconds after the
 * call or, with a negative grace, timeout + 10 s after a failure. `stopping`: the caller's rank
 * stopped as asked, so the others' exit statuses (not their signals, but this call's SIGKILL)
 * say how they followed. An interrupt() reaches them all once; then their interrupt statuses are
 * no failure. */
int wait_workers(int first, int nproc, pid_t* pids, double timeout, double grace, int stopping, char* why, size_t size);

int cmd_train(int argc, char** argv);
int cmd_new_model(int argc, char** argv);
int cmd_evaluate(int argc, char** argv);
int cmd_pull(int argc, char** argv);
int cmd_animate(int argc, char** argv);
int cmd_push(int argc, char** argv);
int cmd_fetch(int argc, char** argv);
int cmd_prepare(int argc, char** argv);
int cmd_studio(int argc, char** argv);

#endif
