/*
 * bioesp.h — the public C ABI of bioesp, speculative biodiversity with Stable Diffusion.
 *
 * Conventions (they hold for every function, present and future):
 *  - Every function that can fail returns a bioesp_status. On failure, bioesp_last_error()
 *    returns a message for the calling thread (which file, which tensor, which key).
 *  - Handles are opaque; each *_open/_create has a matching *_close/_destroy that accepts NULL.
 *  - Every buffer or string the library returns has its own free function; never call free().
 *  - Options structs begin with `struct_size` and are filled by their *_options_init() function,
 *    so fields can be appended without breaking compiled callers. Pass NULL for the defaults.
 *  - Structs the library fills (bioesp_tensor_info, bioesp_image, bioesp_lora_info,
 *    bioesp_option) also begin with `struct_size`: set it to the size you compiled against; the
 *    library fills the fields that fit. Structs handed to callbacks (bioesp_progress,
 *    bioesp_train_progress) carry the library's struct_size: read only the fields it covers.
 *  - Callbacks take a `void* user` and are given per handle or per call, never process-wide.
 *    A progress callback that returns nonzero cancels the operation (BIOESP_ERR_CANCELLED).
 *  - No C++ exception, abort() or LibTorch assertion crosses this boundary.
 *  - Paths and strings are UTF-8.
 *  - Thread-safety: functions without a handle are safe from any thread. A handle may be used
 *    from several threads only where its functions say so; otherwise serialise calls on it.
 *  - Blocking: calls that load or write files, reach the network or compute (bioesp_model_load,
 *    the LoRA calls, bioesp_generate, bioesp_animate, bioesp_train, bioesp_fetch, bioesp_pull,
 *    ...) return when the work is done. A game's frame or a UI's event loop calls only these,
 *    which never wait for a generation: bioesp_generate_async, bioesp_job_poll,
 *    bioesp_job_cancel, bioesp_job_take on a finished job, bioesp_images_count/get/setting and
 *    bioesp_last_error. bioesp_job_wait waits up to its timeout; bioesp_job_free and
 *    bioesp_model_free wait for a running job to stop (cancelled: within one denoising step);
 *    the LoRA calls wait for a generation running on the model to finish.
 */
#ifndef BIOESP_H
#define BIOESP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The one place the version is defined; CMake reads it from here. */
#define BIOESP_VERSION_MAJOR 0
#define BIOESP_VERSION_MINOR 1
#define BIOESP_VERSION_PATCH 0
#define BIOESP_VERSION_NUMBER \
  (BIOESP_VERSION_MAJOR * 10000 + BIOESP_VERSION_MINOR * 100 + BIOESP_VERSION_PATCH)

#if defined(_WIN32)
#  if defined(BIOESP_BUILDING)
#    define BIOESP_API __declspec(dllexport)
#  else
#    define BIOESP_API __declspec(dllimport)
#  endif
#else
#  define BIOESP_API __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------------------------------------
 * Status, errors, version
 * ------------------------------------------------------------------------------------------- */

typedef enum bioesp_status {
  BIOESP_OK = 0,
  BIOESP_ERR_INVALID_ARGUMENT = 1, /* a NULL handle, a value out of range, a bad option */
  BIOESP_ERR_IO = 2,               /* a file could not be opened, read, written or renamed */
  BIOESP_ERR_FORMAT = 3,           /* a file or answer is malformed, or refused as unsafe */
  BIOESP_ERR_NETWORK = 4,          /* a connection failed or a server answered an error */
  BIOESP_ERR_CANCELLED = 5,        /* a callback or a cancel call stopped the operation */
  BIOESP_ERR_OUT_OF_MEMORY = 6,
  BIOESP_ERR_UNSUPPORTED = 7,      /* valid input this build or version cannot handle */
  BIOESP_ERR_NOT_FOUND = 8,        /* a named tensor, key, file or repository does not exist */
  BIOESP_ERR_MISMATCH = 9,         /* weights do not fit the architecture (names or shapes) */
  BIOESP_ERR_INTERNAL = 10         /* a bug in bioesp: please report the message */
} bioesp_status;

/* Short English name of a status ("invalid argument", ...). Never NULL. */
BIOESP_API const char* bioesp_status_string(bioesp_status status);

/* Detail of the last failure on the calling thread; "" when none. Valid until the next
 * bioesp call on this thread. */
BIOESP_API const char* bioesp_last_error(void);

/* BIOESP_VERSION_NUMBER of the library that is loaded. */
BIOESP_API unsigned bioesp_version(void);
/* "MAJOR.MINOR.PATCH" of the library that is loaded. */
BIOESP_API const char* bioesp_version_string(void);
/* OK when a program compiled against header version `header_version` can use the loaded
 * library: same major, and the library's minor at least the header's. Call it as
 * bioesp_check_version(BIOESP_VERSION_NUMBER). */
BIOESP_API bioesp_status bioesp_check_version(unsigned header_version);

/* ---------------------------------------------------------------------------------------------
 * Callbacks and returned buffers
 * ------------------------------------------------------------------------------------------- */

typedef enum bioesp_log_level {
  BIOESP_LOG_DEBUG = 0,
  BIOESP_LOG_INFO = 1,
  BIOESP_LOG_WARNING = 2,
  BIOESP_LOG_ERROR = 3
} bioesp_log_level;

/* Receives messages; called on the thread doing the work. */
typedef void (*bioesp_log_fn)(void* user, bioesp_log_level level, const char* message);

typedef struct bioesp_progress {
  size_t struct_size;
  const char* stage;   /* what is being done, e.g. "load", "denoise", "download" */
  uint64_t current;    /* units done */
  uint64_t total;      /* units in all, 0 when unknown */
  const char* item;    /* the current file, tensor or title; may be NULL */
  uint64_t bytes;      /* bytes transferred so far, where it applies */
} bioesp_progress;

/* Return nonzero to cancel. Called on the thread doing the work. */
typedef int (*bioesp_progress_fn)(void* user, const bioesp_progress* progress);

/* Frees a string returned by the library. NULL is fine. */
BIOESP_API void bioesp_string_free(char* s);

/* ---------------------------------------------------------------------------------------------
 * Weight files: safetensors, PyTorch checkpoints, diffusers folders, single-file checkpoints
 * ------------------------------------------------------------------------------------------- */

typedef enum bioesp_dtype {
  BIOESP_DTYPE_F32 = 0,
  BIOESP_DTYPE_F16 = 1,
  BIOESP_DTYPE_BF16 = 2,
  BIOESP_DTYPE_F64 = 3,
  BIOESP_DTYPE_I64 = 4,
  BIOESP_DTYPE_I32 = 5,
  BIOESP_DTYPE_I16 = 6,
  BIOESP_DTYPE_I8 = 7,
  BIOESP_DTYPE_U8 = 8,
  BIOESP_DTYPE_BOOL = 9
} bioesp_dtype;

/* "F32", "F16", ... as safetensors names them. */
BIOESP_API const char* bioesp_dtype_name(bioesp_dtype dtype);

typedef enum bioesp_weights_format {
  BIOESP_FORMAT_SAFETENSORS = 0,    /* one .safetensors file */
  BIOESP_FORMAT_PYTORCH_ZIP = 1,    /* torch.save zip checkpoint (.ckpt, .pt, .bin) */
  BIOESP_FORMAT_DIFFUSERS = 2,      /* a diffusers pipeline or component folder */
  BIOESP_FORMAT_SHARDED = 3         /* a *.safetensors.index.json with its shards */
} bioesp_weights_format;

typedef struct bioesp_weights bioesp_weights;

typedef struct bioesp_weights_options {
  size_t struct_size;
  /* Folders: prefer "<name>.<variant>.safetensors" files, e.g. "fp16". NULL: none. */
  const char* variant;
  /* Single-file original checkpoints (CompVis/LDM for SD 1.x/2.x, SGM for SDXL): nonzero renames
   * their tensors to diffusers names, split into the components unet, vae and text_encoder (and
   * SDXL's text_encoder_2). */
  int to_diffusers;
  /* With to_diffusers: a diffusers folder whose component configs describe the architecture.
   * NULL: the architecture is inferred from the tensor shapes. */
  const char* config_dir;
  bioesp_log_fn log;
  void* log_user;
} bioesp_weights_options;

BIOESP_API void bioesp_weights_options_init(bioesp_weights_options* options);

/* Opens a weight file or a diffusers folder and validates it; tensor data is mapped or read
 * lazily where the format allows. Thread-safety: the handle is read-only once open; every
 * bioesp_weights_* call below may run on it from several threads at once. */
BIOESP_API bioesp_status bioesp_weights_open(const char* path, const bioesp_weights_options* options,
                                             bioesp_weights** out);
BIOESP_API void bioesp_weights_close(bioesp_weights* weights);

BIOESP_API bioesp_status bioesp_weights_format_of(const bioesp_weights* weights,
                                                  bioesp_weights_format* out);
/* Number of tensors. */
BIOESP_API bioesp_status bioesp_weights_count(const bioesp_weights* weights, size_t* out);

#define BIOESP_MAX_DIMS 8
typedef struct bioesp_tensor_info {
  size_t struct_size;
  const char* name;       /* valid while the handle is open */
  const char* component;  /* "unet", "vae", "text_encoder", ... or "" for a plain file */
  bioesp_dtype dtype;
  size_t ndim;
  int64_t shape[BIOESP_MAX_DIMS];
  uint64_t nbytes;
} bioesp_tensor_info;

/* Tensors are in a stable order: by component, then by name. */
BIOESP_API bioesp_status bioesp_weights_tensor(const bioesp_weights* weights, size_t index,
                                               bioesp_tensor_info* out);
/* Index of a tensor by component ("" or NULL for any) and name; BIOESP_ERR_NOT_FOUND if absent. */
BIOESP_API bioesp_status bioesp_weights_find(const bioesp_weights* weights, const char* component,
                                             const char* name, size_t* index);
/* Copies a tensor's elements, contiguous, converted to `dtype` (floating types convert among
 * themselves; integer types must match). `size` must be at least elements × dtype size. */
BIOESP_API bioesp_status bioesp_weights_read(const bioesp_weights* weights, size_t index,
                                             bioesp_dtype dtype, void* dst, size_t size);

/* Metadata: safetensors __metadata__, checkpoint scalars such as epoch and global_step. */
BIOESP_API bioesp_status bioesp_weights_metadata_count(const bioesp_weights* weights, size_t* out);
BIOESP_API bioesp_status bioesp_weights_metadata(const bioesp_weights* weights, size_t index,
                                                 const char** key, const char** value);

/* The tensors the architecture expects: from a diffusers folder's component configs, or for a
 * single file from options->config_dir's configs or, without one, inferred from its shapes. The
 * handle lists components, names, shapes (dtype F32) but holds no data: bioesp_weights_read
 * answers BIOESP_ERR_UNSUPPORTED. Compare it with bioesp_weights_open's tensors (single files
 * opened with to_diffusers) to find missing, unexpected and mismatched tensors. */
BIOESP_API bioesp_status bioesp_weights_open_expected(const char* path, const bioesp_weights_options* options,
                                                      bioesp_weights** out);

/* Writes the tensors of one component ("" or NULL when there is only one) as safetensors,
 * with the metadata, atomically: a temporary file is written, flushed and renamed. */
BIOESP_API bioesp_status bioesp_weights_save_safetensors(const bioesp_weights* weights,
                                                         const char* component, const char* path);

/* ---------------------------------------------------------------------------------------------
 * LoRA files
 * ------------------------------------------------------------------------------------------- */

typedef enum bioesp_lora_flavour {
  BIOESP_LORA_NONE = 0,       /* not a LoRA file */
  BIOESP_LORA_DIFFUSERS = 1,  /* unet.<module>.lora.down/up.weight */
  BIOESP_LORA_PEFT = 2,       /* <module>.lora_A/lora_B.weight */
  BIOESP_LORA_KOHYA = 3,      /* lora_unet_<module>.lora_down/lora_up.weight, .alpha */
  BIOESP_LORA_LEGACY_CKPT = 4 /* model.diffusion_model.unet.<module>.lora.down/up.weight */
} bioesp_lora_flavour;

typedef struct bioesp_lora_info {
  size_t struct_size;
  bioesp_lora_flavour flavour;
  int64_t rank;         /* the largest rank seen; 0 when not a LoRA */
  size_t num_targets;   /* number of adapted modules */
} bioesp_lora_info;

BIOESP_API bioesp_status bioesp_weights_lora_info(const bioesp_weights* weights,
                                                  bioesp_lora_info* out);
/* The adapted module, named as in the diffusers model ("unet.down_blocks.0...to_k",
 * "text_encoder.text_model..."), valid while the handle is open. */
BIOESP_API bioesp_status bioesp_weights_lora_target(const bioesp_weights* weights, size_t index,
                                                    const char** module);


/* ---------------------------------------------------------------------------------------------
 * Images
 * ------------------------------------------------------------------------------------------- */

/* Pixels, row-major, 8 bits per channel: 1 (gray), 3 (RGB) or 4 (RGBA) channels. As an input it
 * is a view of the caller's memory; as an output it points into a bioesp_images set. */
typedef struct bioesp_image {
  size_t struct_size;
  uint32_t width, height, channels;
  const uint8_t* pixels; /* width × height × channels bytes */
} bioesp_image;

/* A set of images owned by the library: generated ones, or one read from a file. Read-only once
 * made: its calls may run from several threads at once; free it once, from one thread. */
typedef struct bioesp_images bioesp_images;

/* Reads a PNG (palette, gray, 16-bit, alpha, interlaced) or JPEG (baseline, progressive, gray,
 * CMYK) file as RGB or RGBA. */
BIOESP_API bioesp_status bioesp_images_load(const char* path, bioesp_images** out);
BIOESP_API void bioesp_images_free(bioesp_images* images);
/* A set holding copies of `count` images (1, 3 or 4 channels; gray becomes RGB): the caller's own
 * pixels, or previews, to save or grid with the calls below. */
BIOESP_API bioesp_status bioesp_images_copy(const bioesp_image* images, size_t count, bioesp_images** out);
BIOESP_API bioesp_status bioesp_images_count(const bioesp_images* images, size_t* out);
/* The image's pixels stay valid until bioesp_images_free. */
BIOESP_API bioesp_status bioesp_images_get(const bioesp_images* images, size_t index, bioesp_image* out);
/* Settings recorded with a generated image ("prompt", "seed", ...), as text; NULL if absent. */
BIOESP_API const char* bioesp_images_setting(const bioesp_images* images, size_t index, const char* key);

typedef struct bioesp_save_options {
  size_t struct_size;
  int jpeg_quality; /* 1..100, default 92 */
} bioesp_save_options;
BIOESP_API void bioesp_save_options_init(bioesp_save_options* options);
/* Writes image `index` as PNG (with its settings in text chunks) or JPEG, chosen by the path's
 * extension (.png, .jpg, .jpeg), atomically. */
BIOESP_API bioesp_status bioesp_images_save(const bioesp_images* images, size_t index, const char* path,
                                            const bioesp_save_options* options);
/* One image of all of them in rows of `columns` (batch order: one row per prompt when columns is
 * the images per prompt), each scaled to `cell` pixels square (0: the first image's size), with
 * 2-pixel white gaps. Free *out with bioesp_images_free. */
BIOESP_API bioesp_status bioesp_images_grid(const bioesp_images* images, uint32_t columns, uint32_t cell,
                                            bioesp_images** out);

/* ---------------------------------------------------------------------------------------------
 * Models and generation
 * ------------------------------------------------------------------------------------------- */

typedef struct bioesp_model bioesp_model;

typedef enum bioesp_device {
  BIOESP_DEVICE_CPU = 0,
  BIOESP_DEVICE_CUDA = 1
} bioesp_device;

/* How a model holds its Linear and Conv2d weights (the bulk of it) in memory. */
typedef enum bioesp_weight_storage {
  BIOESP_WEIGHTS_AS_DTYPE = 0, /* in `dtype`, as computed */
  /* Float16 or bfloat16, widened to `dtype` at each layer's call: half the memory of float32
   * weights with the arithmetic still in float32, for a small drift (docs/performance.md). */
  BIOESP_WEIGHTS_F16 = 1,
  BIOESP_WEIGHTS_BF16 = 2,
  /* Linear weights as int8 with a float scale per output row, Conv2d ones in float16, widened
   * likewise: about a third of float32's memory, for a larger drift (docs/performance.md). */
  BIOESP_WEIGHTS_INT8 = 3,
  /* As the weights file holds them (the default): Linear and Conv2d weights stored in float16 or
   * bfloat16 stay so and are widened to `dtype` at each call, which gives exactly the numbers of
   * converting them at load in half the memory; other weights are held in `dtype`. */
  BIOESP_WEIGHTS_AS_FILE = 4
} bioesp_weight_storage;

typedef struct bioesp_model_options {
  size_t struct_size;
  const char* config_dir; /* single files: a diffusers folder with the configs and tokenizer */
  const char* variant;    /* "fp16": prefer *.fp16.safetensors; NULL: none */
  bioesp_device device;
  int device_index;
  bioesp_dtype dtype;     /* F32 (default), F16 or BF16 */
  int threads;            /* CPU intra-op threads; 0: the process's cores, shared by jobs at once */
  bioesp_log_fn log;
  void* log_user;
  /* An autoencoder in place of the model's VAE (a path or Hub id): a diffusers AutoencoderKL or
   * AutoencoderTiny folder (TAESD, e.g. "madebyollin/taesd"), or TAESD's original
   * taesd_decoder / taesd_encoder .safetensors or .pth files (their folder, or the decoder file).
   * A tiny one draws the images (and encodes img2img's, when it has its encoder) in a fraction of
   * the time, and the model's own VAE is not loaded. NULL: the model's VAE. */
  const char* vae;
  /* A tiny autoencoder (as above) that decodes only the live previews; the images still come
   * from the model's VAE. NULL: previews from `vae` when it is tiny, else a linear latent→RGB map. */
  const char* preview_vae;
  bioesp_weight_storage weight_storage; /* default BIOESP_WEIGHTS_AS_FILE */
} bioesp_model_options;

BIOESP_API void bioesp_model_options_init(bioesp_model_options* options);
/* Loads a diffusers pipeline folder, or a single-file checkpoint with options->config_dir. A Hub
 * model id ("org/name" or "org/name@revision") that is not a local path is pulled into the Hub
 * cache first, or found there when offline (see bioesp_pull); config_dir may be an id too.
 * Thread-safety: a model may be shared between threads; calls that use it are serialised (two
 * generations on one model run one after the other). */
BIOESP_API bioesp_status bioesp_model_load(const char* path, const bioesp_model_options* options,
                                           bioesp_model** out);
/* Waits for the model's running jobs, then frees it. */
BIOESP_API void bioesp_model_free(bioesp_model* model);

/* LoRA adapters (diffusers, PEFT, kohya or legacy checkpoint files) under a name of the caller's
 * choice; attaching a name again replaces that adapter. Every key of the file must land on a
 * layer: otherwise nothing is attached and BIOESP_ERR_MISMATCH names the keys. */
BIOESP_API bioesp_status bioesp_model_add_lora(bioesp_model* model, const char* path, float scale,
                                               const char* name);
BIOESP_API bioesp_status bioesp_model_set_lora_scale(bioesp_model* model, const char* name, float scale);
BIOESP_API bioesp_status bioesp_model_remove_lora(bioesp_model* model, const char* name);

/* ControlNets: a diffusers ControlNetModel folder (config.json and its weights), a Hub id of one,
 * or an original single file as published for SD 1.5 (control_v11p_sd15_canny.pth, ...; renamed
 * as diffusers' from_single_file renames it). Loaded once, for `model`'s device and dtype and
 * checked against its UNet: one made for another base (SD 2.x's for SD 1.x) is refused with
 * BIOESP_ERR_MISMATCH naming the config value that differs. A ControlNet may serve any number of
 * generations (and models of its base) and may be freed while jobs that use it still run. */
typedef struct bioesp_controlnet bioesp_controlnet;
BIOESP_API bioesp_status bioesp_controlnet_load(bioesp_model* model, const char* path, bioesp_controlnet** out);
BIOESP_API void bioesp_controlnet_free(bioesp_controlnet* controlnet);

/* One ControlNet of a generation (several are summed, as diffusers' MultiControlNetModel). */
typedef struct bioesp_control {
  size_t struct_size;
  bioesp_controlnet* controlnet; /* loaded with bioesp_controlnet_load; or NULL and `path` */
  const char* path;              /* a ControlNet loaded for this generation only */
  const bioesp_image* image;     /* the control image, any size: resized to the output (Lanczos);
                                    without width and height the first one sets the output size */
  const char* preprocess;        /* NULL or "none": the image as it is (depth maps, poses, edges made
                                    elsewhere); "canny": its edges as ControlNet's canny annotator
                                    finds them (OpenCV's Canny, thresholds 100 and 200); "scribble":
                                    the lines of a drawing, white on black (scribble, lineart) */
  float scale;                   /* controlnet_conditioning_scale, default 1 */
  float start, end;              /* control_guidance_start / _end: the share of the steps it acts
                                    on, default 0 and 1 */
} bioesp_control;
BIOESP_API void bioesp_control_init(bioesp_control* control);
/* A live preview: a small picture of one image as it forms — the current estimate of the finished
 * image (the scheduler's prediction of the clean latents), decoded by the model's tiny
 * autoencoder (preview_vae, or a tiny vae) at the image's size, else by SD 1.x's linear
 * latent→RGB map at the latents' size (1/8 of it for SD). */
typedef struct bioesp_preview {
  size_t struct_size;
  int step, total;     /* denoising steps done / in all */
  size_t index;        /* the image in the batch (prompt-major, as the images come) */
  bioesp_image image;  /* RGB; the pixels are valid during the call only */
} bioesp_preview;

/* Return nonzero to cancel. Called on the thread doing the work (the worker thread for jobs). */
typedef int (*bioesp_preview_fn)(void* user, const bioesp_preview* preview);

/* Textual-inversion embeddings: A1111's .pt (string_to_param, read by the restricted unpickler:
 * a pickle that names code is refused) or .safetensors (emb_params), or diffusers'
 * learned_embeds (.safetensors or .bin, {token: vectors}); one or several vectors, for SD 1.x
 * (768 wide) or 2.x (1024). token NULL or "": the token a diffusers file names, else the file's
 * stem ("bichito.pt" gives "bichito"). Prompts of either syntax then read the token as one unit
 * wherever it stands as words (any case, also as "(bichito:1.2)"), as many tokens as it has
 * vectors. Adding a token again replaces it. A width other than the text encoder's is refused
 * with BIOESP_ERR_MISMATCH naming both. */
BIOESP_API bioesp_status bioesp_model_add_embedding(bioesp_model* model, const char* path, const char* token);
BIOESP_API bioesp_status bioesp_model_remove_embedding(bioesp_model* model, const char* token);
/* The attached embeddings' tokens, sorted, one per line; free with bioesp_string_free. */
BIOESP_API bioesp_status bioesp_model_embeddings(bioesp_model* model, char** tokens);

/* How prompts (and negative prompts) are read. */
typedef enum bioesp_prompt_syntax {
  /* As diffusers: the first 75 tokens between bos and eos, a longer prompt cut with a warning
   * through the log callback; brackets are words. The same seed gives diffusers' image. */
  BIOESP_PROMPT_PLAIN = 0,
  /* As AUTOMATIC1111's web UI: (x) weighs x ×1.1, [x] ÷1.1, (x:1.3) ×1.3, nested brackets
   * multiply, \( \) \[ \] are the characters, unclosed brackets close at the end; BREAK starts a
   * new window. Any length: windows of 75 tokens (words after a comma within the last 20 of a
   * window move to the next), each encoded on its own, its hidden states scaled by the weights
   * and rescaled to their unweighted mean, joined along the sequence; the negative prompt is
   * filled with empty windows to the same length (or the prompt to the negative's). At most 32
   * windows; brackets at most 256 deep; weights that are not numbers or not finite are refused. */
  BIOESP_PROMPT_WEIGHTED = 1
} bioesp_prompt_syntax;

typedef struct bioesp_generate_options {
  size_t struct_size;
  const char* const* prompts; /* num_prompts prompts, one batch entry each */
  size_t num_prompts;
  const char* negative_prompt; /* NULL or "": unconditional (SDXL: see micro-conditioning below) */
  int steps;                   /* default 50 */
  float guidance;              /* default 7.5; classifier-free guidance when > 1 */
  uint64_t seed;               /* CPU generator seed, as torch.Generator("cpu").manual_seed */
  const char* scheduler;       /* NULL: the model's own; else a name (bioesp_scheduler_name: pndm,
                                  ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, unipc, ddpm, lcm,
                                  tcd), built from the model's scheduler config as diffusers'
                                  from_config builds it, optionally with from_config settings:
                                  "euler:timestep_spacing=trailing" (see bioesp_scheduler_describe) */
  int width, height;           /* multiples of 8; 0: the model's native size */
  int images_per_prompt;       /* default 1 */
  int clip_skip;               /* 0: the last layer */
  const bioesp_image* init_image; /* img2img when set (cropped to multiples of 8) */
  float strength;              /* img2img: default 0.8 */
  bioesp_progress_fn progress; /* stage "denoise", current/total steps; nonzero return cancels */
  void* progress_user;
  bioesp_log_fn log;           /* warnings such as a truncated prompt */
  void* log_user;
  int device_generator;        /* nonzero: draw noise with a generator on the model's device (as
                                  diffusers with a CUDA generator); the same seed then gives other
                                  images than on the CPU */
  int vae_tile_size;           /* > 0: the VAE decodes (and encodes the init image) in tiles of
                                  this many pixels a side, for images larger than memory allows;
                                  the image equals the untiled one. 0: whole (a tiny autoencoder
                                  always decodes whole) */
  const char* tiling;          /* textures that repeat without seams: "x", "y" or "both" pad every
                                  UNet and VAE convolution circularly along those axes (A1111's
                                  tiling), for this generation only; NULL or "none": zeros, as
                                  before. Not combined with vae_tile_size */
  const char* background;      /* "transparent": sprites. Each prompt gets ", plain white
                                  background" appended, and an alpha matte grown from the border
                                  colour makes the images RGBA (4 channels; the opaque pixels keep
                                  the drawn colours). It fails where the creature touches the
                                  border or shares the backdrop's colour. NULL or "opaque": RGB */
  float eta;                   /* DDIM's eta and TCD's gamma: the share of fresh noise in each step,
                                  0 (deterministic) to 1 (TCD's choice for one step). Negative
                                  (default): the scheduler's own, 0 for ddim, 0.3 for tcd. Other
                                  schedulers refuse a value */
  const bioesp_control* controls; /* num_controls ControlNets (txt2img and img2img), an array of
                                  structs made by one bioesp_control_init (one struct_size) */
  size_t num_controls;
  int guess_mode;              /* nonzero: the ControlNets see only the prompt's half of the CFG
                                  batch, their residuals scaled from 0.1 (shallow) to 1 (deep) */
  const bioesp_image* mask;    /* inpainting, with init_image: white repaints, black keeps (gray or
                                  RGB, any size: resized to the init image and cut at 50%). An
                                  inpainting model (9-channel UNet) sees the mask; any other is
                                  blended with the noised original outside it at every step.
                                  strength 1 repaints from pure noise. The result keeps the init
                                  image's pixels outside the mask (blended across a blurred edge) */
  float mask_blur;             /* the mask blurred first by a Gaussian of this radius in pixels
                                  (diffusers' mask_processor.blur, PIL's GaussianBlur); default 0 */
  int padding_mask_crop;       /* > 0: the model sees only the region around the mask, widened by
                                  this many pixels and to the image's aspect ratio, at the image's
                                  size; the result is pasted back. 0: the whole image */
  int outpaint_left, outpaint_top, outpaint_right, outpaint_bottom;
                               /* outpainting, with init_image: the canvas grows by these many
                                  pixels on each side (filled by extending the edges), the new area
                                  is painted (with `mask`, if given, as well) and the canvas is cut
                                  to multiples of 8; default 0 */
  bioesp_prompt_syntax prompt_syntax; /* default BIOESP_PROMPT_PLAIN */
  /* Live previews every `preview_every` steps (after steps N, 2N, …: steps / N of them per image;
   * 0, the default: none). They go to `preview` once per image, and async jobs keep the latest
   * for bioesp_job_preview. The images made are the same with and without them. */
  int preview_every;
  bioesp_preview_fn preview;   /* needs preview_every ≥ 1 */
  void* preview_user;
  /* Step caching (DeepCache, Ma et al. 2023): with cache_interval > 1 the UNet makes a full pass
   * every cache_interval steps (the first included) and between them reuses its deep features,
   * recomputing only the shallow branch down to skip `cache_branch` (0, the shallowest: conv_in's;
   * up to the UNet's skip connections − 1, 11 for SD 1.x). Faster, and the image drifts from the
   * uncached one (see docs/performance.md). 0 or 1 (default): off. */
  int cache_interval;
  int cache_branch;
  /* SDXL's micro-conditioning (StableDiffusionXLPipeline's original_size, crops_coords_top_left,
   * target_size and their negative_* counterparts), in pixels; other models ignore them. Sizes 0
   * (default) are the image's; crops default to 0. With no negative_* value set the negative half
   * takes the positive values, as diffusers does; unset negative sizes are the positive ones. negative_prompt NULL gives an SDXL model with
   * force_zeros_for_empty_prompt (base 1.0) zero negative embeddings; "" encodes the empty text. */
  int original_width, original_height;
  int crop_left, crop_top;
  int target_width, target_height;
  int negative_original_width, negative_original_height;
  int negative_crop_left, negative_crop_top;
  int negative_target_width, negative_target_height;
  /* SDXL refiners (requires_aesthetics_score in model_index.json): the aesthetic score in place
   * of the target size; defaults 6 and 2.5 as diffusers' */
  float aesthetic_score, negative_aesthetic_score;
  /* Token merging (ToMe for Stable Diffusion, Bolya & Hoffman 2023): this share of the tokens
   * entering the self-attention of the top level's transformer blocks (SDXL: the first level
   * that has them) is merged into similar ones and spread back after it, as the tomesd package
   * does; the destinations follow the seed, so images stay reproducible. Faster at large sizes,
   * and the image drifts from the exact one (see docs/performance.md). 0 … 0.75; 0 (default): off,
   * the exact image. */
  float token_merging;
} bioesp_generate_options;

BIOESP_API void bioesp_generate_options_init(bioesp_generate_options* options);
/* The schedulers `scheduler` accepts by name ("pndm", "ddim", "euler", …), in a stable order.
 * The names are static storage. */
BIOESP_API bioesp_status bioesp_scheduler_count(size_t* out);
BIOESP_API bioesp_status bioesp_scheduler_name(size_t index, const char** out);
/* What a scheduler name gives a model, as JSON in *json (free with bioesp_string_free):
 * {"scheduler", "class" (diffusers'), "config" (every key as diffusers holds it after
 * from_config, with "_use_default_values"), "steps", "timesteps", "sigmas" (schedulers in sigma
 * space), "init_noise_sigma"} for `steps` steps. `path` is a model folder (or Hub id, pulled as
 * bioesp_model_load pulls it), a scheduler folder or a scheduler_config.json; NULL: the embedded
 * model. `name` as bioesp_generate_options.scheduler (NULL: the model's own). Infinite config
 * values (lambda_min_clipped's default) are written as null. */
BIOESP_API bioesp_status bioesp_scheduler_describe(const char* path, const char* name, int steps, char** json);
/* Generates images (prompt-major: all images of prompt 0, then prompt 1, ...) into a set the
 * caller frees with bioesp_images_free. */
BIOESP_API bioesp_status bioesp_generate(bioesp_model* model, const bioesp_generate_options* options,
                                         bioesp_images** out);

/* Asynchronous generation for game loops and UIs: submit returns at once; the work runs on a
 * worker thread (progress callbacks arrive there). Jobs on one model run one after the other, in
 * the order they were submitted (a job is QUEUED until it holds the model, then RUNNING); jobs on
 * different models run concurrently. */
typedef struct bioesp_job bioesp_job;

typedef enum bioesp_job_state {
  BIOESP_JOB_QUEUED = 0,
  BIOESP_JOB_RUNNING = 1,
  BIOESP_JOB_DONE = 2,     /* finished: take the images or the error */
} bioesp_job_state;

/* Returns at once (a frame may call it): the options (and the strings and init image they
 * point to) are copied, the job starts on a thread of its own. */
BIOESP_API bioesp_status bioesp_generate_async(bioesp_model* model, const bioesp_generate_options* options,
                                               bioesp_job** out);
/* State and progress; never blocks. Safe from any thread. */
BIOESP_API bioesp_status bioesp_job_poll(const bioesp_job* job, bioesp_job_state* state, uint64_t* step,
                                         uint64_t* total);
/* Waits up to timeout_ms (negative: forever); *finished says whether the job is done. */
BIOESP_API bioesp_status bioesp_job_wait(bioesp_job* job, int timeout_ms, int* finished);
/* The job's latest live previews (one per image; the options' preview_every must be ≥ 1) as a set
 * the caller frees, or *out NULL when none has come yet; *step (may be NULL) receives the step
 * they show. Never blocks on the work. Safe from any thread. */
BIOESP_API bioesp_status bioesp_job_preview(const bioesp_job* job, bioesp_images** out, uint64_t* step);
/* Asks the job to stop; it ends within one denoising step with BIOESP_ERR_CANCELLED. Safe from
 * any thread, including the job's own progress callback. */
BIOESP_API bioesp_status bioesp_job_cancel(bioesp_job* job);
/* A finished job's images (once), or its failure status with its message in bioesp_last_error.
 * Never blocks: a job that is not done yet is refused (poll first). */
BIOESP_API bioesp_status bioesp_job_take(bioesp_job* job, bioesp_images** out);
/* Cancels the job if it still runs, waits for its thread to end and frees it. Not from the job's
 * own callback; a frame hands it to a thread of its own (the thread ends within a denoising
 * step, at once for a finished job). */
BIOESP_API void bioesp_job_free(bioesp_job* job);

/* ---------------------------------------------------------------------------------------------
 * Animations: creatures morphing into one another
 * ------------------------------------------------------------------------------------------- */

typedef struct bioesp_animate_options {
  size_t struct_size;
  const char* const* prompts; /* keyframe prompts; one is held for every keyframe */
  size_t num_prompts;
  const uint64_t* seeds;      /* keyframe seeds; one is held. As many prompts as seeds, or one */
  size_t num_seeds;
  int frames;                 /* frames from the first keyframe to the last; default 16 */
  int pingpong;               /* then back again (without repeating the ends): a smooth loop */
  const char* negative_prompt;
  int steps;                  /* default 25 */
  float guidance;             /* default 7.5 */
  const char* scheduler;      /* NULL: the model's own */
  int width, height;          /* 0: the model's native size */
  int clip_skip;
  bioesp_progress_fn progress; /* stage "animate": denoising steps done / in all frames */
  void* progress_user;
  bioesp_log_fn log;
  void* log_user;
  int vae_tile_size;          /* as in bioesp_generate_options */
  bioesp_prompt_syntax prompt_syntax; /* default BIOESP_PROMPT_PLAIN; keyframes of other lengths
                                         are filled with empty windows */
} bioesp_animate_options;

BIOESP_API void bioesp_animate_options_init(bioesp_animate_options* options);
/* Renders the frames: each frame's starting noise is spherically interpolated between its two
 * keyframes' seeds' noise, its text embedding linearly between their prompts'; the other
 * settings are fixed. The first and last frames equal single generations of the first and last
 * keyframes. Free the frames with bioesp_images_free. */
BIOESP_API bioesp_status bioesp_animate(bioesp_model* model, const bioesp_animate_options* options,
                                        bioesp_images** frames);

typedef struct bioesp_animation_options {
  size_t struct_size;
  double fps;   /* default 8 */
  int loop;     /* GIF: repeat forever (default 1) */
  int quality;  /* MP4/WebM: 1 … 100, default 80 */
} bioesp_animation_options;

BIOESP_API void bioesp_animation_options_init(bioesp_animation_options* options);
/* Writes frames (one size) as an animation chosen by the path: *.gif (one palette for all
 * frames), *.mp4 (H.264), *.webm (VP9), or a folder of frame-0000.png … Formats this build
 * lacks give BIOESP_ERR_UNSUPPORTED. */
BIOESP_API bioesp_status bioesp_images_save_animation(const bioesp_images* frames, const char* path,
                                                      const bioesp_animation_options* options);

/* ---------------------------------------------------------------------------------------------
 * Datasets: Wikimedia Commons fetch, and preparation for training
 * ------------------------------------------------------------------------------------------- */

typedef enum bioesp_source {
  BIOESP_SOURCE_CATEGORY = 0, /* value: "Category:…" (the prefix may be left out) */
  BIOESP_SOURCE_CAMPAIGN = 1, /* value: an UploadWizard campaign, e.g. "Biodiversidad en Colombia 2025" */
  BIOESP_SOURCE_SEARCH = 2,   /* value: search text (File namespace) */
  BIOESP_SOURCE_TITLES = 3    /* titles / num_titles: "File:…" names */
} bioesp_source;

typedef struct bioesp_fetch_options {
  size_t struct_size;
  bioesp_source source;
  const char* value;
  const char* const* titles;
  size_t num_titles;
  int limit;               /* 0: every file that qualifies */
  uint64_t seed;           /* which `limit` files: a seeded random sample */
  int width;               /* thumbnail width, one Commons serves: 20, 40, 60, 120, 250, 330, 500
                              (default), 960, 1280, 1920, 3840 */
  int original;            /* download originals instead (SHA-1 verified) */
  const char* licenses;    /* comma list of cc0, pd, cc-by, cc-by-sa (default: all four), or others
                              by their lower-case name */
  int allow_restricted;    /* keep files with restrictions such as personality rights */
  const char* keywords;    /* comma list: keep files mentioning any (title, description, categories) */
  const char* contact;     /* goes into the User-Agent, as Wikimedia asks (an e-mail or URL) */
  const char* api;         /* endpoint; NULL: $BIOESP_COMMONS_API or Commons' api.php */
  const char* out;         /* dataset folder: images, manifest.jsonl, ATTRIBUTION.md */
  int max_retries;         /* default 6 */
  double retry_delay;      /* first backoff in seconds, doubling; default 1 */
  bioesp_progress_fn progress; /* stage "list" then "download": files done/total, bytes, title */
  void* progress_user;
  bioesp_log_fn log;       /* each skipped file with the reason; retries */
  void* log_user;
} bioesp_fetch_options;

BIOESP_API void bioesp_fetch_options_init(bioesp_fetch_options* options);
/* Downloads into options->out; files already there and verified are not fetched again. On
 * cancel (or a failure) what finished stays, recorded in the manifest. *downloaded and *skipped
 * (either may be NULL) receive counts. */
BIOESP_API bioesp_status bioesp_fetch(const bioesp_fetch_options* options, size_t* downloaded, size_t* skipped);

typedef struct bioesp_prepare_options {
  size_t struct_size;
  const char* in;            /* any folder of PNG/JPEG images (a fetched dataset or not) */
  const char* out;
  int size;                  /* default 512; a multiple of 8 */
  const char* crop;          /* "center" (default), "attention" (the square with the most detail)
                                or "pad": never stretched */
  uint8_t background[3];     /* padding and transparency; default white */
  const char* caption;       /* NULL: each image's manifest caption, else its file name */
  int caption_from_metadata; /* append the species / object name from the manifest */
  int near_duplicate_distance; /* difference-hash bits (default 4); negative: exact duplicates only */
  bioesp_progress_fn progress; /* stage "prepare" */
  void* progress_user;
  bioesp_log_fn log;
  void* log_user;
} bioesp_prepare_options;

BIOESP_API void bioesp_prepare_options_init(bioesp_prepare_options* options);
BIOESP_API bioesp_status bioesp_prepare(const bioesp_prepare_options* options, size_t* prepared, size_t* skipped);

/* ---------------------------------------------------------------------------------------------
 * Fine-tuning: DreamBooth-LoRA (or full DreamBooth) as diffusers' train_dreambooth_lora.py
 * ------------------------------------------------------------------------------------------- */

typedef struct bioesp_train_progress {
  size_t struct_size;
  const char* stage;       /* "prepare", "class-images", "cache-latents", "train", "validate", "save" */
  int step, total;         /* optimizer steps done / in all (stage "train"); items for the others */
  double loss;             /* mean loss of the step's micro-batches */
  double learning_rate;
  double seconds_per_step; /* average since this run (or resume) started */
  double eta_seconds;
  int world_size;          /* processes training together (1 alone); the loss is their mean */
  double samples_per_second; /* of all processes together */
} bioesp_train_progress;

/* Return nonzero to cancel: during "train" a checkpoint is written first, then bioesp_train
 * returns BIOESP_ERR_CANCELLED; resume_training continues from it. Across processes every rank's
 * callback is asked each step; when any cancels, all stop after that step and rank 0 writes the
 * one checkpoint. */
typedef int (*bioesp_train_progress_fn)(void* user, const bioesp_train_progress* progress);

typedef struct bioesp_train_options {
  size_t struct_size;
  const char* model;          /* diffusers folder, or a single file with config_dir */
  const char* config_dir;
  const char* data;           /* instance images: any folder of PNG/JPEG, or a bioesp dataset */
  const char* prompt;         /* instance prompt, for images without their own caption */
  int use_captions;           /* default 1: manifest.jsonl / <image>.txt captions where present */
  const char* class_data;     /* prior preservation: class images (NULL: off) */
  const char* class_prompt;
  int num_class_images;       /* missing class images are generated with the base model first */
  float prior_weight;         /* default 1.0 */
  int resolution;             /* default 512; a multiple of 8 */
  int random_crop, flip;      /* default 0: centre crop, no mirroring */
  int cache_latents;          /* encode every image once (and mirrored with flip); the VAE then does no more work */
  int steps;                  /* optimizer steps; 0: `epochs` passes over the data */
  int epochs;                 /* default 1 */
  int batch_size;             /* default 1 */
  int grad_accumulation;      /* default 1 */
  float learning_rate;        /* default 1e-4 */
  int scale_lr;               /* multiply the rate by batch size × accumulation × processes */
  const char* lr_scheduler;   /* constant (default), constant_with_warmup, linear, cosine,
                                 cosine_with_restarts, polynomial */
  int lr_warmup_steps;
  int lr_cycles;              /* cosine_with_restarts; default 1 */
  float lr_power;             /* polynomial; default 1.0 */
  float adam_beta1, adam_beta2, adam_weight_decay, adam_epsilon; /* 0.9, 0.999, -1, 1e-8. The
                                 decay of the UNet's weights; negative (default -1): the
                                 script's default, 1e-4 for SDXL, 1e-2 for SD 1.x/2.x */
  float max_grad_norm;        /* default 1.0; 0: no clipping */
  int rank;                   /* default 4 */
  float alpha;                /* 0 (default): the rank */
  float lora_dropout;
  int train_text_encoder;     /* LoRA on q/k/v/out_proj of the text encoder too */
  int full;                   /* all UNet weights instead of a LoRA; saves a diffusers folder */
  float noise_offset;         /* 0: off */
  float snr_gamma;            /* min-SNR weighting; 0: off (5 is common) */
  const char* mixed_precision;/* "no" (default), "fp16" (CUDA), "bf16": frozen weights in that
                                 type, trained ones in float32 */
  int gradient_checkpointing; /* recompute the UNet's blocks in the backward pass: less memory */
  bioesp_device device;
  int device_index;
  int threads;                /* CPU intra-op threads; 0: a share of the cores, as the model's */
  uint64_t seed;              /* LoRA initialisation, data order, crops, noise, timesteps */
  int checkpoint_every;       /* steps; 0: none until the end (or a cancel) */
  int checkpoints_kept;       /* default 3; 0: all */
  int resume;                 /* continue from the newest checkpoint in out/checkpoints */
  const char* validation_prompt;
  int validation_every;       /* steps; a final validation image is always made with a prompt */
  int validation_steps;       /* denoising steps for validation and class images; default 25 */
  int save_kohya;             /* also write kohya_lora.safetensors (A1111 / ComfyUI naming) */
  const char* out;            /* output folder: pytorch_lora_weights.safetensors (or a model
                                 folder), checkpoints/, validation/, train_log.jsonl */
  bioesp_train_progress_fn progress;
  void* progress_user;
  bioesp_log_fn log;
  void* log_user;
  /* Training from scratch (see bioesp_new_model). */
  int train_vae;              /* the VAE alone, on L1 reconstruction + KL; saves a model folder
                                 whose VAE config gets the scaling_factor its latents need */
  float kl_weight;            /* default 1e-6, against the summed L1 (CompVis' weighting) */
  float tag_dropout;          /* captions as comma-separated tags: drop each with this
                                 probability (one stays); default 0 */
  int shuffle_tags;           /* shuffle the kept tags */
  float caption_dropout;      /* train on the empty caption this often, which classifier-free
                                 guidance needs in a model of its own; default 0 */
  int save_half;              /* model folders (full, VAE) written in float16 */
  /* Training across processes (data parallel on PyTorch's c10d, as torchrun launches it): every
   * process calls bioesp_train with the same options and its own process_rank; they meet at
   * rank 0's master_addr:master_port; rank 0 alone writes to `out`. */
  int world_size;             /* processes; 0 (default): torchrun's WORLD_SIZE, RANK, LOCAL_RANK,
                                 LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT where set, else 1 */
  int process_rank;           /* 0 to world_size - 1 (with world_size > 0) */
  int local_rank;             /* its place on this machine: with CUDA, the GPU it takes */
  const char* master_addr;    /* where rank 0 hosts the rendezvous; default 127.0.0.1 */
  int master_port;            /* default 29500 */
  const char* backend;        /* "gloo", "nccl" or "auto" (default: nccl for CUDA where the
                                 build has it, else gloo) */
  float timeout;              /* seconds to join and to wait for any other rank; default 1800.
                                 A rank that dies, freezes or fails stops the others within it,
                                 with an error naming the rank */
  /* As train_dreambooth_lora_sdxl.py's --pretrained_vae_model_name_or_path: */
  const char* vae;            /* a diffusers AutoencoderKL folder (config.json and
                                 diffusion_pytorch_model[.fp16].safetensors) or Hub id that encodes
                                 the pictures in place of the model's VAE, its latents scaled by its
                                 own scaling_factor (e.g. madebyollin/sdxl-vae-fp16-fix); SDXL's runs
                                 in float32 under any mixed_precision, as the model's does. Not a
                                 tiny autoencoder (TAESD). NULL: the model's */
  float adam_weight_decay_text_encoder; /* the text encoders' LoRA weights; negative (default -1):
                                 1e-3 for SDXL, adam_weight_decay's for SD 1.x/2.x */
  float text_encoder_lr;      /* the text encoders' base rate (the schedule applies; scale_lr
                                 does not); 0: learning_rate; negative (default -1): 5e-6 for
                                 SDXL, learning_rate for SD 1.x/2.x */
} bioesp_train_options;

BIOESP_API void bioesp_train_options_init(bioesp_train_options* options);
/* Trains; on success *result_path (when not NULL) receives the saved LoRA file or model folder,
 * freed with bioesp_string_free. Blocks; run it on a thread of yours to keep a UI alive. */
BIOESP_API bioesp_status bioesp_train(const bioesp_train_options* options, char** result_path);

typedef struct bioesp_new_model_options {
  size_t struct_size;
  const char* configs;        /* folder with unet/, text_encoder/ and vae/ config.json and
                                 scheduler/scheduler_config.json (model_index.json optional) */
  const char* data;           /* a dataset (as bioesp_train reads it) whose captions the
                                 vocabulary is learned from */
  int vocab_size;             /* 0: the text encoder config's vocab_size */
  uint64_t seed;
  const char* out;            /* a folder that does not exist yet */
  bioesp_log_fn log;
  void* log_user;
} bioesp_new_model_options;

BIOESP_API void bioesp_new_model_options_init(bioesp_new_model_options* options);
/* Writes a diffusers model folder with freshly initialised weights and a CLIP BPE vocabulary
 * learned from the captions, to train from scratch: bioesp_train with train_vae first, then with
 * full and train_text_encoder. On success *result_path (when not NULL) receives the folder. */
BIOESP_API bioesp_status bioesp_new_model(const bioesp_new_model_options* options, char** result_path);

/* How well a model knows captioned pictures it did not train on: its mean denoising loss with
 * their captions (the objective training minimises, at fixed timesteps and noises) and, with
 * `classify`, the diffusion classifier of Li et al. 2023 ("Your Diffusion Model is Secretly a
 * Zero-Shot Classifier"): each picture's loss with its own caption and classify − 1 others drawn
 * from `captions`, the same timesteps and noises for all; the lowest names the caption. */
typedef struct bioesp_evaluate_options {
  size_t struct_size;
  const char* data;           /* captioned pictures (a dataset, as bioesp_train reads it) */
  const char* captions;       /* a dataset whose captions are the wrong candidates; NULL: data's */
  int classify;               /* K ≥ 2: top-1 accuracy among K captions; 0 (default): the loss alone */
  int timesteps;              /* default 10, spread evenly over the schedule ((i + ½)·T / n) */
  int noises;                 /* fixed noises at each timestep; default 1 */
  uint64_t seed;              /* the noises, and each picture's wrong captions and their order */
  bioesp_log_fn log;          /* each picture's loss and the caption it was read as, at INFO */
  void* log_user;
} bioesp_evaluate_options;

typedef struct bioesp_evaluation {
  size_t struct_size;         /* set by the caller (sizeof); later fields are left alone */
  int pictures;
  double loss;                /* mean over the pictures, with their own captions */
  double accuracy;            /* share of pictures whose own caption had the lowest loss (a tie
                                 goes to the caption scored first); NaN without classify */
} bioesp_evaluation;

BIOESP_API void bioesp_evaluate_options_init(bioesp_evaluate_options* options);
/* Evaluates at the model's resolution, on its device, in the model's turn. */
BIOESP_API bioesp_status bioesp_evaluate(bioesp_model* model, const bioesp_evaluate_options* options,
                                         bioesp_evaluation* result);

/* The model that ships with bioesp (a small model of animals and plants, trained by bioesp on
 * Noto Emoji art), installed beside the library; NULL when it cannot be found. Static storage. */
BIOESP_API const char* bioesp_embedded_model(void);

/* ---------------------------------------------------------------------------------------------
 * Hugging Face Hub: models into the cache huggingface_hub shares, and publishing
 * ------------------------------------------------------------------------------------------- */

typedef struct bioesp_pull_options {
  size_t struct_size;
  const char* repo;            /* "org/name" or "org/name@revision" */
  const char* revision;        /* NULL: the one in repo, else "main" */
  const char* const* include;  /* globs over repository paths, such as "*.json"; none: what a
                                  pipeline needs (configs and one weights file per component) */
  size_t num_include;
  const char* variant;         /* "fp16": prefer *.fp16.* weights; NULL: the full-precision ones */
  const char* endpoint;        /* NULL: $HF_ENDPOINT, else https://huggingface.co */
  const char* token;           /* NULL: $HF_TOKEN, else the file $HF_HOME/token. Never logged. */
  const char* cache_dir;       /* NULL: $HF_HUB_CACHE, else $HF_HOME/hub (~/.cache/huggingface/hub) */
  int offline;                 /* use only the cache; also when $HF_HUB_OFFLINE=1 */
  int max_retries;             /* default 6, on 408/429/5xx and dropped connections */
  double retry_delay;          /* first backoff in seconds, doubling; default 1; Retry-After wins */
  bioesp_progress_fn progress; /* stage "download": files done/total, bytes of the current file */
  void* progress_user;
  bioesp_log_fn log;
  void* log_user;
} bioesp_pull_options;

BIOESP_API void bioesp_pull_options_init(bioesp_pull_options* options);
/* Downloads into the cache (verifying every file) and, when snapshot_path is not NULL, returns
 * the snapshot folder, a model folder ready to load (free with bioesp_string_free). Files already
 * in the cache, by bioesp or huggingface_hub, are not downloaded again. When the Hub cannot be
 * reached, a cached snapshot of the revision is used. */
BIOESP_API bioesp_status bioesp_pull(const bioesp_pull_options* options, char** snapshot_path);

typedef struct bioesp_push_options {
  size_t struct_size;
  const char* path;            /* a LoRA file, or a folder: a training output (checkpoints/ left
                                  out) or a model folder */
  const char* repo;            /* "org/name"; created when missing */
  int private_repo;
  const char* commit_message;  /* NULL: "Upload with bioesp" */
  const char* base_model;      /* for the model card; NULL: from the weights' metadata */
  const char* dataset;         /* folder whose manifest.jsonl credits the images; NULL: the
                                  dataset_manifest.jsonl that training left beside the weights */
  const char* endpoint;
  const char* token;           /* needs write access; NULL: $HF_TOKEN, else $HF_HOME/token */
  int max_retries;
  double retry_delay;
  bioesp_progress_fn progress; /* stage "upload": files done/total, bytes of the current file */
  void* progress_user;
  bioesp_log_fn log;
  void* log_user;
} bioesp_push_options;

BIOESP_API void bioesp_push_options_init(bioesp_push_options* options);
/* Publishes, with a generated README.md model card (front matter, usage, training settings,
 * the credits of every dataset image) unless the folder has one. Files the Hub holds already are
 * not sent again. *commit_url (when not NULL) receives the commit's URL, or "" when nothing
 * changed; free it with bioesp_string_free. */
BIOESP_API bioesp_status bioesp_push(const bioesp_push_options* options, char** commit_url);

/* ---------------------------------------------------------------------------------------------
 * Options by name: one table describes every field of every options struct above
 *
 * As curl's option table does for curl_easy_setopt, it gives each field its name (the C name),
 * the command line's flag, its type, its range and one line of help; the command line, the
 * bindings and the studio set options through it. Defaults are not in the table: they are what
 * the *_options_init functions set (read them with bioesp_option_get on an initialised struct).
 * The structs and their comments above stay the documentation.
 * ------------------------------------------------------------------------------------------- */

typedef enum bioesp_options_kind {
  BIOESP_OPTIONS_WEIGHTS = 0,   /* bioesp_weights_options */
  BIOESP_OPTIONS_MODEL = 1,     /* bioesp_model_options */
  BIOESP_OPTIONS_GENERATE = 2,  /* bioesp_generate_options */
  BIOESP_OPTIONS_ANIMATE = 3,   /* bioesp_animate_options */
  BIOESP_OPTIONS_ANIMATION = 4, /* bioesp_animation_options */
  BIOESP_OPTIONS_SAVE = 5,      /* bioesp_save_options */
  BIOESP_OPTIONS_FETCH = 6,     /* bioesp_fetch_options */
  BIOESP_OPTIONS_PREPARE = 7,   /* bioesp_prepare_options */
  BIOESP_OPTIONS_TRAIN = 8,     /* bioesp_train_options */
  BIOESP_OPTIONS_NEW_MODEL = 9, /* bioesp_new_model_options */
  BIOESP_OPTIONS_PULL = 10,     /* bioesp_pull_options */
  BIOESP_OPTIONS_PUSH = 11,     /* bioesp_push_options */
  BIOESP_OPTIONS_EVALUATE = 12  /* bioesp_evaluate_options */
} bioesp_options_kind;

/* The kind's name, the struct's without "bioesp_" and "_options" ("generate", "new_model"), or
 * NULL for a number past the last kind (count from 0 until NULL to list them). Static storage. */
BIOESP_API const char* bioesp_options_kind_name(bioesp_options_kind kind);
/* The kind of that name; BIOESP_ERR_NOT_FOUND for none. */
BIOESP_API bioesp_status bioesp_options_kind_find(const char* name, bioesp_options_kind* out);
/* A struct of the kind filled by its init function, for hosts that set options only by name
 * (bindings, tools). Pass it wherever that struct goes; free it with bioesp_options_free. */
BIOESP_API bioesp_status bioesp_options_new(bioesp_options_kind kind, void** out);
BIOESP_API void bioesp_options_free(void* options);

typedef enum bioesp_option_type {
  BIOESP_OPTION_BOOL = 0,        /* int 0 or 1; as text "1", "0", "true" or "false" */
  BIOESP_OPTION_INT = 1,         /* int */
  BIOESP_OPTION_UINT64 = 2,      /* uint64_t */
  BIOESP_OPTION_FLOAT = 3,       /* float */
  BIOESP_OPTION_DOUBLE = 4,      /* double */
  BIOESP_OPTION_STRING = 5,      /* const char* */
  BIOESP_OPTION_CHOICE = 6,      /* one of `choices`: an enum of that order, or a const char* */
  BIOESP_OPTION_RGB = 7,         /* uint8_t[3]; as text "RRGGBB" (hexadecimal) */
  BIOESP_OPTION_STRING_LIST = 8, /* const char* const*, its length in the `count` field */
  BIOESP_OPTION_UINT64_LIST = 9, /* const uint64_t*, its length in the `count` field */
  BIOESP_OPTION_IMAGE = 10,      /* const bioesp_image* */
  BIOESP_OPTION_FUNCTION = 11,   /* a callback */
  BIOESP_OPTION_POINTER = 12,    /* a callback's user pointer */
  BIOESP_OPTION_SIZE = 13,       /* size_t: struct_size and the lists' counts */
  BIOESP_OPTION_STRUCT_LIST = 14 /* an array of structs (generate's controls), its length in the
                                    `count` field; not set by name */
} bioesp_option_type;

/* One field of an options struct. Its strings are static storage. */
typedef struct bioesp_option {
  size_t struct_size;
  const char* name;        /* the C field name, e.g. "negative_prompt" */
  const char* flag;        /* the command line's flag without "--", e.g. "negative-prompt" (a BOOL
                              flag also has a "--no-" form); NULL for fields not set by name */
  bioesp_option_type type;
  const char* choices;     /* CHOICE: the values with "|" between them ("cpu|cuda"); else NULL */
  double min, max;         /* numbers: the range; -HUGE_VAL / HUGE_VAL where only the type bounds
                              it */
  int min_exclusive;       /* nonzero: above min, not equal to it */
  int max_exclusive;       /* nonzero: below max, not equal to it */
  const char* help;        /* one line of English */
  const char* not_exposed; /* NULL: set by name; else why not (a callback, a list's count, …) */
  const char* count;       /* lists: the field that holds the length ("num_prompts"); else NULL */
} bioesp_option;

/* The fields of a kind, in the struct's order (struct_size first). */
BIOESP_API bioesp_status bioesp_option_count(bioesp_options_kind kind, size_t* out);
BIOESP_API bioesp_status bioesp_option_at(bioesp_options_kind kind, size_t index, bioesp_option* out);
/* A field by its name or its flag; BIOESP_ERR_NOT_FOUND when the kind has none. */
BIOESP_API bioesp_status bioesp_option_find(bioesp_options_kind kind, const char* name_or_flag,
                                            bioesp_option* out);
/* Parses `text` by the field's type (numbers in C notation, bools as 1/0/true/false, choices by
 * name, colours as RRGGBB), checks it against the field's range and stores it into `options`, a
 * struct of that kind (from its init function or bioesp_options_new). Out of range or unparsable
 * text is BIOESP_ERR_INVALID_ARGUMENT with the field named; an unknown name BIOESP_ERR_NOT_FOUND.
 * STRING fields keep the pointer `text`: the caller keeps it alive while the options are used,
 * as with every const char* field. A choice stores the library's own copy of its name; "" (or
 * NULL) leaves a string choice unset (NULL: its default); the scheduler's name may carry
 * from_config settings after a ':' (only the name is checked, the text is kept as a string's).
 * Lists and images take bioesp_option_set_list. */
BIOESP_API bioesp_status bioesp_option_set(bioesp_options_kind kind, void* options, const char* name,
                                           const char* text);
/* Sets a list field and its count, or the image: `items` is a const char* const* (STRING_LIST),
 * a const uint64_t* (UINT64_LIST) or a const bioesp_image* with count 1 (IMAGE; count 0 unsets
 * it). The pointers are kept: the caller keeps the items alive while the options are used. */
BIOESP_API bioesp_status bioesp_option_set_list(bioesp_options_kind kind, void* options, const char* name,
                                                const void* items, size_t count);
/* The field as text, in the form bioesp_option_set reads ("" for an unset string; lists as a
 * JSON array; an image as "WIDTHxHEIGHTxCHANNELS"); free it with bioesp_string_free. Callbacks
 * and their pointers are not readable. */
BIOESP_API bioesp_status bioesp_option_get(bioesp_options_kind kind, const void* options, const char* name,
                                           char** text);

#ifdef __cplusplus
}
#endif

#endif /* BIOESP_H */
