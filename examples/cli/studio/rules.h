// The studio's service limits, in one place: tighter than the library's own (a local studio that
// anyone on the page can drive should not be asked for an hour of work or a gigabyte of memory),
// and stated in the README's studio section.
#pragma once
#include <cstddef>

namespace studio::rules {

// Requests
constexpr size_t max_head = 8 * 1024;     // bytes of request line and headers
constexpr size_t max_body = 64 * 1024;    // bytes of body, whatever its encoding
constexpr int request_seconds = 10;       // for a request to arrive, headers and body
constexpr int write_seconds = 10;         // for a client to take the next bytes of an answer
constexpr int keep_alive_requests = 100;  // on one connection
constexpr size_t max_connections = 512;   // open at once (the longest-waiting idle one makes room)
constexpr size_t max_event_streams = 256; // pages following the studio
constexpr size_t max_event_backlog = 256 << 10;  // bytes of events sent to a page at once
constexpr int event_heartbeat_seconds = 15;
constexpr size_t max_unsent = 256 << 20;  // bytes of answers clients have not taken yet: no new file beyond
constexpr int workers = 4;                // threads that serve complete requests
constexpr size_t max_text = 2000;         // bytes of a prompt or any other text field

// Generation
constexpr int max_images = 16;            // pictures in one run
constexpr int max_size = 2048;            // pixels a side
constexpr size_t max_queued_runs = 32;
constexpr size_t max_queued_pictures = 64;
constexpr size_t gallery_listed = 500;    // newest pictures listed
constexpr size_t animations_listed = 200;

// Datasets and training
constexpr int max_train_steps = 100000;
constexpr int max_train_processes = 8;   // ranks of one training (nproc), each with its own model
constexpr size_t max_notes = 500;         // reasons for files left out, kept per fetch

// Options-table fields the studio narrows: the table's row gives the type and the library's
// range, these the studio's (options.cpp applies both, and GET /api/options shows the result).
struct Limit {
  const char* kind;  // bioesp_options_kind_name
  const char* field;
  double min, max;
  bool multiple_of_8;
};
constexpr Limit limits[] = {
    {"generate", "steps", 1, 500, false},       {"generate", "guidance", 0, 30, false},
    {"generate", "width", 0, max_size, true},   {"generate", "height", 0, max_size, true},
    {"generate", "vae_tile_size", 0, max_size, true},
    {"animate", "steps", 1, 500, false},        {"animate", "guidance", 0, 30, false},
    {"animate", "width", 0, max_size, true},    {"animate", "height", 0, max_size, true},
    {"animate", "vae_tile_size", 0, max_size, true},
    {"animate", "frames", 2, 240, false},       {"animation", "fps", 1, 60, false},
    {"fetch", "limit", 1, 5000, false},         {"prepare", "size", 64, max_size, true},
    {"train", "steps", 1, max_train_steps, false}, {"train", "epochs", 1, 100, false},
    {"train", "rank", 1, 256, false},           {"train", "batch_size", 1, 64, false},
    {"train", "grad_accumulation", 1, 64, false}, {"train", "resolution", 64, max_size, true},
    {"train", "num_class_images", 0, 1000, false}, {"train", "validation_steps", 1, 500, false},
    {"train", "validation_every", 0, max_train_steps, false},
    {"train", "checkpoint_every", 0, max_train_steps, false},
};

// The studio's defaults where they differ from the library's (options.cpp sets them on every
// struct it makes; a model's size is set where the model is known).
struct Default {
  const char* kind;
  const char* field;
  const char* text;  // as bioesp_option_set reads it
};
constexpr Default defaults[] = {
    {"fetch", "limit", "50"},  // not a whole category
    {"prepare", "caption_from_metadata", "true"},
    {"train", "prompt", "criatura especulativa colombiana"},
    {"generate", "prompt_syntax", "weighted"},  // A1111's (x:1.3) and BREAK, as galleries' prompts are written
    {"animate", "prompt_syntax", "weighted"},
};

}  // namespace studio::rules
