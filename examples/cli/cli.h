/* Helpers shared by the bioesp commands. */
#ifndef BIOESP_CLI_H
#define BIOESP_CLI_H

#include <bioesp.h>
#include <stdint.h>

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

/* bioesp train --nproc N: runs `bioesp train ARGS` as N ranks on this machine and returns the
 * exit code (a failed rank's, else the first nonzero, else 0). */
int launch_workers(int nproc, int argc, char** argv, double timeout);

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
