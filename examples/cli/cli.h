/* Helpers shared by the bioesp commands. */
#ifndef BIOESP_CLI_H
#define BIOESP_CLI_H

#include <bioesp.h>
#include <stdint.h>

/* Prints "bioesp: WHAT: <last error>" and returns 1. */
int fail_with(const char* what);
void print_log(void* user, bioesp_log_level level, const char* message);
/* 1 on success; otherwise prints why and returns 0. */
int parse_long(const char* flag, const char* text, long* out);
int parse_double(const char* flag, const char* text, double* out);
uint64_t random_seed(void);
/* Ctrl-C sets a flag the progress callbacks read (the work then stops cleanly). */
void catch_sigint(void);
int interrupted(void);

/* Attaches FILE|ID[:SCALE] LoRAs as lora0, lora1, …; 0 (after printing why) on failure. */
int attach_loras(bioesp_model* model, const char* const* specs, size_t n);
/* Attaches FILE[:TOKEN] textual-inversion embeddings (a FILE that exists as given is taken whole);
 * 0 (after printing why) on failure. */
int attach_embeddings(bioesp_model* model, const char* const* specs, size_t n);
/* --prompt-syntax plain|weighted for `command`; 0 (after printing why) for another value. */
int parse_prompt_syntax(const char* command, const char* text, bioesp_prompt_syntax* out);
/* A denoising-steps progress bar (generate, animate); `user` points to an int "quiet" flag;
 * asks to stop after Ctrl-C. */
int steps_progress(void* user, const bioesp_progress* p);
/* A files progress bar (fetch, prepare, pull, push); `user` points to an int "quiet" flag. */
int files_progress(void* user, const bioesp_progress* p);

int cmd_train(int argc, char** argv);
int cmd_new_model(int argc, char** argv);
int cmd_pull(int argc, char** argv);
int cmd_animate(int argc, char** argv);
int cmd_push(int argc, char** argv);
int cmd_fetch(int argc, char** argv);
int cmd_prepare(int argc, char** argv);
int cmd_studio(int argc, char** argv);

#endif
