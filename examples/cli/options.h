/* A command's flags: the library's options table for the kinds of options it passes (each
 * field's flag, type, range, help and default come from there), and a small table of the
 * command's own flags (--model, --out, --quiet, …). `bioesp CMD --help` is made from both. */
#ifndef BIOESP_CLI_OPTIONS_H
#define BIOESP_CLI_OPTIONS_H

#include <bioesp.h>
#include <stdio.h>

/* A flag of the command's own. */
typedef struct cli_flag {
  const char* flag;  /* without "--"; NULL: the bare argument */
  const char* value; /* what it takes ("PATH", "N"); NULL: a switch */
  const char* help;  /* one line, with its default */
  /* Stores the value (NULL for a switch); NULL when it did, else why not. */
  const char* (*apply)(void* target, const char* value);
  void* target;
} cli_flag;

/* Appliers for cli_flag. */
const char* cli_text(void* target, const char* value);   /* const char** = value */
const char* cli_switch(void* target, const char* value); /* int* = 1 */
const char* cli_append(void* target, const char* value); /* cli_list* gets value */

/* An integer flag's destination and range. */
typedef struct cli_int {
  long* value;
  long min, max;
} cli_int;
const char* cli_integer(void* target, const char* value); /* cli_int* */

/* Values of a repeatable flag, in order (argv strings; never freed). */
typedef struct cli_list {
  const char** items;
  size_t count;
} cli_list;
void cli_list_free(cli_list* list);

typedef struct cli_kind {
  bioesp_options_kind kind;
  void* options; /* the command's struct of that kind, initialised */
} cli_kind;

typedef struct cli_command {
  const char* name;       /* "generate" */
  const char* synopsis;   /* after "bioesp NAME ": "--prompt TEXT [options]" */
  const char* about;      /* what it does, a few lines ending in "\n" */
  cli_kind kinds[3];
  size_t num_kinds;
  const cli_flag* own;
  size_t num_own;
  const char* positional; /* the library option (of the first kind) a bare argument sets */
  /* Defaults the command sets itself, for the help: {"seed", "random"}; NULL-terminated pairs. */
  const char* const* defaults;
} cli_command;

/* What parsing kept: lists and images it set, and which library options the command line gave. */
typedef struct cli_args cli_args;

/* Parses argv into the command's option structs and own flags. NULL when the command should end:
 * after --help (*exit_code 0) or a bad argument, which it explained (*exit_code 2). */
cli_args* cli_parse(const cli_command* command, int argc, char** argv, int* exit_code);
/* Whether the command line set the library option `name` (of any of the command's kinds). */
int cli_given(const cli_args* args, const char* name);
/* Frees the lists and images the options point to: after the last call that uses them. */
void cli_free(cli_args* args);

/* The inverse of cli_parse for one struct: every field of `options` (of `kind`) that the command
 * line sets, as the arguments that set it to its value ("--steps", "10", "--no-flip"; unset
 * strings and choices left out), NULL-terminated, their number in *count. NULL (after saying why)
 * for a list or an image, which the command line reads from elsewhere, or out of memory. */
char** cli_command_line(bioesp_options_kind kind, const void* options, int* count);
void cli_command_line_free(char** args);

/* The short list of commands for `bioesp --help`. */
void cli_print_commands(FILE* out);

#endif
