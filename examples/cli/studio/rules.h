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
constexpr int max_steps = 500;
constexpr int max_images = 16;            // pictures in one run
constexpr int max_size = 2048;            // pixels a side, multiples of 8
constexpr size_t max_queued_runs = 32;
constexpr size_t max_queued_pictures = 64;
constexpr int max_frames = 240;           // frames of an animation
constexpr double max_fps = 60;
constexpr size_t gallery_listed = 500;    // newest pictures listed
constexpr size_t animations_listed = 200;

// Datasets and training
constexpr int max_fetch = 5000;           // pictures fetched from Commons at once
constexpr int max_train_steps = 100000;
constexpr int max_rank = 256;
constexpr int max_batch = 64;
constexpr size_t max_notes = 500;         // reasons for files left out, kept per fetch

}  // namespace studio::rules
