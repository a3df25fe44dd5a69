/* Funnel C ABI: opaque handles, status codes and messages. For C programs, mobile apps (JNI, Swift) and
 * WASM. Every function that takes a model is named funnel_model_<verb> (FAISS's c_api style: one prefix
 * per handle); seven verbs were renamed to that prefix before Funnel had any outside user, so no old name
 * is kept. Every function that can fail returns a FunnelStatus; on failure funnel_last_error() returns the
 * message, valid until the next call on the same thread. Strings are UTF-8, NUL-terminated unless a
 * length is returned beside them.
 *
 * For wrapper authors (JNI, Swift, other FFIs):
 * - Ownership. A FunnelModel is created by a load function and released by funnel_model_free; a
 *   FunnelFeatures by funnel_features_new / funnel_features_free. Nothing else needs freeing: every other
 *   pointer the ABI returns (item keys, feature names, tensor names, metadata, the producer) points into
 *   the model and stays valid until funnel_model_free. Copy such strings into your language's strings
 *   (Swift: String(bytes:encoding:) over the pointer and length; JNI: NewStringUTF on a NUL-terminated
 *   copy, or a byte[] of the given length) and the model can be freed whenever you like.
 * - Threads. A loaded model is immutable: share one between any number of threads (tested with 16 under
 *   ThreadSanitizer). A FunnelFeatures belongs to one thread at a time. Errors are per thread.
 * - Memory the caller provides. Output arrays (scores, indices, keys) are the caller's, sized as each
 *   function says; the ABI never keeps a pointer to them.
 * - No exceptions cross the ABI and nothing aborts on bad input: a damaged file, a missing feature, a NULL
 *   argument all come back as a status with a message. Map FUNNEL_* codes to your error type once.
 * - Numbers. FUNNEL_OK never comes with a score or an embedding that is not finite: a NaN or infinite
 *   feature value is refused naming the feature, and a model that computes such a number anyway (features
 *   too large for it, parameters or catalogue rows that are not finite) answers with an error instead.
 * - Swift: import this header through a module map (module Funnel { header "funnel_c.h" link "funnel_c" })
 *   and wrap FunnelModel in a final class whose deinit calls funnel_model_free. Kotlin/Java: hold the
 *   handle in a long field and free it from close() (AutoCloseable), not from a finalizer. */
#ifndef FUNNEL_C_H
#define FUNNEL_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum FunnelStatus {
  FUNNEL_OK = 0,
  FUNNEL_INVALID_ARGUMENT = 1,
  FUNNEL_NOT_FOUND = 2,
  FUNNEL_IO_ERROR = 3,
  FUNNEL_CORRUPT_MODEL = 4,
  FUNNEL_UNSUPPORTED = 5
} FunnelStatus;

typedef struct FunnelModel FunnelModel;       /* immutable once loaded; share it between threads */
typedef struct FunnelFeatures FunnelFeatures; /* one request's raw features; one thread at a time */

const char* funnel_version(void);
const char* funnel_last_error(void);

FunnelStatus funnel_model_load_file(const char* path, FunnelModel** out);
/* Copies `size` bytes; the caller may free `data` afterwards. */
FunnelStatus funnel_model_load_bytes(const void* data, size_t size, FunnelModel** out);
void funnel_model_free(FunnelModel* model);

/* What the file holds. */
uint32_t funnel_model_format_version(const FunnelModel* model);
const char* funnel_model_producer(const FunnelModel* model); /* NUL-terminated */
size_t funnel_model_byte_size(const FunnelModel* model);
int funnel_model_has_retrieval(const FunnelModel* model);   /* 1 when the model has a retrieval stage */

typedef struct FunnelFeatureInfo {
  const char* name;           /* NUL-terminated */
  const char* kind;           /* "categorical", "multi_categorical" or "dense" */
  uint32_t cardinality;       /* ids, out-of-vocabulary included (0 for dense) */
  uint32_t vocabulary_size;
  uint32_t hash_buckets;
} FunnelFeatureInfo;
size_t funnel_model_feature_count(const FunnelModel* model);
FunnelStatus funnel_model_feature_info(const FunnelModel* model, size_t index, FunnelFeatureInfo* out);

#define FUNNEL_MAX_TENSOR_RANK 8
typedef struct FunnelTensorInfo {
  const char* name;           /* not NUL-terminated: name_length bytes */
  size_t name_length;
  const char* dtype;          /* "f32", "f16" or "i8" */
  size_t rank;                /* at most FUNNEL_MAX_TENSOR_RANK dims are written to shape */
  uint64_t shape[FUNNEL_MAX_TENSOR_RANK];
  size_t bytes;
} FunnelTensorInfo;
size_t funnel_model_tensor_count(const FunnelModel* model);
FunnelStatus funnel_model_tensor_info(const FunnelModel* model, size_t index, FunnelTensorInfo* out);

/* The file's metadata (training config, metrics, dataset), as NUL-terminated key/value pairs. */
size_t funnel_model_metadata_count(const FunnelModel* model);
FunnelStatus funnel_model_metadata(const FunnelModel* model, size_t index, const char** key, const char** value);

size_t funnel_model_catalogue_size(const FunnelModel* model);
size_t funnel_model_embedding_dim(const FunnelModel* model);
/* The catalogue's stored precision: "f32", "f16" or "int8" (static string). */
const char* funnel_model_catalogue_precision(const FunnelModel* model);
/* The key of catalogue item `index`; *length receives its byte length. NULL when out of range. */
const char* funnel_model_item_key(const FunnelModel* model, size_t index, size_t* length);

FunnelFeatures* funnel_features_new(void);
void funnel_features_free(FunnelFeatures* features);
FunnelStatus funnel_features_set_string(FunnelFeatures* features, const char* name, const char* value);
/* A number must be finite: NaN or an infinity is FUNNEL_INVALID_ARGUMENT naming the feature. So is, at the
 * call that uses it, a dense feature given as a string that reads as one ("nan", "inf"). */
FunnelStatus funnel_features_set_number(FunnelFeatures* features, const char* name, double value);
/* Appends one value to a multi-valued feature (creating it as an empty list first if needed). */
FunnelStatus funnel_features_add_to_list(FunnelFeatures* features, const char* name, const char* value);
/* Declares a multi-valued feature with no values (so that "no genres" differs from "missing"). */
FunnelStatus funnel_features_set_empty_list(FunnelFeatures* features, const char* name);

/* The user's embedding: writes funnel_model_embedding_dim() floats. */
FunnelStatus funnel_model_user_embedding(const FunnelModel* model, const FunnelFeatures* user, float* out);
/* An item's embedding from its raw features through the file's item tower (a cold-start item the catalogue
 * lacks, in the same space): writes funnel_model_embedding_dim() floats. */
FunnelStatus funnel_model_item_embedding(const FunnelModel* model, const FunnelFeatures* item, float* out);

/* Top-k catalogue items for `user`, best first, leaving out the `exclude_count` keys in `exclude`.
 * Writes at most k entries to out_indices / out_scores and their number to *out_count. */
FunnelStatus funnel_model_retrieve(const FunnelModel* model, const FunnelFeatures* user, size_t k,
                                   const char* const* exclude, size_t exclude_count, uint32_t* out_indices,
                                   float* out_scores, size_t* out_count);

/* funnel_model_retrieve for `user_count` users at once (one pass over the catalogue for all of them, much faster
 * per user), on `threads` threads (0: every core; 1: the caller's only). User u's hits go to
 * out_indices[u * k ...] and out_scores[u * k ...], their number to out_counts[u]. */
FunnelStatus funnel_model_retrieve_batch(const FunnelModel* model, const FunnelFeatures* const* users, size_t user_count,
                                         size_t k, const char* const* exclude, size_t exclude_count, size_t threads,
                                         uint32_t* out_indices, float* out_scores, size_t* out_counts);

/* Catalogue updates without retraining: a new model (free it with funnel_model_free) with `add_count` items
 * added, or replaced where the key exists, from their raw features (embedded by the file's item tower,
 * stored in the catalogue's precision, and encoded into the ranking item table when there is one), and
 * `remove_count` keys removed. `model` is unchanged and may keep serving other threads meanwhile. The whole
 * file is rebuilt and verified (about one copy of it): batch updates. */
FunnelStatus funnel_model_update_catalogue(const FunnelModel* model, const char* const* add_keys,
                                           const FunnelFeatures* const* add_features, size_t add_count,
                                           const char* const* remove_keys, size_t remove_count, FunnelModel** out);
/* The model's file bytes (an updated model's new file); valid while the model lives. */
const uint8_t* funnel_model_bytes(const FunnelModel* model, size_t* size);
/* Writes the model's bytes to `path` atomically (a temporary file beside it, then rename). */
FunnelStatus funnel_model_save(const FunnelModel* model, const char* path);
/* The checks loading leaves out, so that load time does not grow with the file: every checksum the file
 * carries (format 3 on: each tensor's, each key table's, the item table's, the whole file's), then key tables
 * sorted and distinct and item-table ids within range. FUNNEL_CORRUPT_MODEL, with the first problem as the
 * error message (naming the tensor or table whose bytes changed), when they fail; a model that fails still
 * never reads outside its file. O(file size). */
FunnelStatus funnel_model_verify(const FunnelModel* model);
/* 1 when the file carries checksums (format 3 on), which funnel_model_verify checks; 0 for a format 2 file. */
int funnel_model_has_checksums(const FunnelModel* model);

/* 1 when the model has a ranking stage. */
int funnel_model_has_ranking(const FunnelModel* model);

/* Click probabilities of `candidate_count` candidate item keys for `user` and their behaviour sequence
 * (`behaviour_count` item keys, oldest first), written to out_probabilities in candidate order. An
 * unknown candidate is an error (FUNNEL_NOT_FOUND); an unknown behaviour counts with out-of-vocabulary
 * features. */
FunnelStatus funnel_model_rank(const FunnelModel* model, const FunnelFeatures* user, const char* const* behaviours,
                               size_t behaviour_count, const char* const* candidates, size_t candidate_count,
                               float* out_probabilities);

/* 1 when the model has a pre-ranking stage (the AutoFAS student between retrieval and ranking). */
int funnel_model_has_pre_ranking(const FunnelModel* model);

/* funnel_model_rank with the pre-ranking stage: click probabilities of the candidates by the pre-ranking
 * stage's parameters, with the same arguments, semantics and errors. */
FunnelStatus funnel_model_prerank(const FunnelModel* model, const FunnelFeatures* user, const char* const* behaviours,
                                  size_t behaviour_count, const char* const* candidates, size_t candidate_count,
                                  float* out_probabilities);

/* The whole cascade in one call: retrieval of retrieve_k candidates, pre-ranking to prerank_k, ranking, the
 * best k; each stage that the file holds runs, and a file without retrieval scores `candidates`.
 * Zero-initialise the request and set what you need; k 0 means 10, retrieve_k 0 means 200 and prerank_k 0
 * means 50. Unknown keys in exclude/allow are ignored. */
typedef struct FunnelCascadeRequest {
  size_t k;
  size_t retrieve_k;
  const char* const* behaviours; /* the user's behaviour sequence, item keys, oldest first */
  size_t behaviour_count;
  const char* const* candidates; /* what to rank when the file has no retrieval stage */
  size_t candidate_count;
  const char* const* exclude;    /* never returned (items already seen) */
  size_t exclude_count;
  const char* const* allow;      /* when allow_count > 0, only these may be returned */
  size_t allow_count;
  size_t threads;                /* threads scanning the catalogue: 0 or 1 = the caller's only */
  size_t prerank_k;              /* what pre-ranking passes to ranking (at least k) */
  size_t skip;                   /* FUNNEL_SKIP_* flags: stages the file holds that this call leaves out */
} FunnelCascadeRequest;

/* FunnelCascadeRequest.skip: leave a stage out to measure what it adds (`funnel eval` does); a left-out
 * stage passes its candidates on as they come. */
#define FUNNEL_SKIP_PRE_RANKING 1u
#define FUNNEL_SKIP_RANKING 2u

/* Per-stage wall time in milliseconds; a stage the file lacks reads NaN. */
typedef struct FunnelCascadeTimings {
  double retrieval_ms;
  double ranking_ms;
  double total_ms;
  double pre_ranking_ms;
} FunnelCascadeTimings;

/* Writes at most request->k (or 10) items, best first: out_keys[i] points into the model (valid while it
 * lives) with its byte length in out_key_lengths[i], and out_scores[i] is the last stage's score (a click
 * probability when the file ranks). *out_count receives the number written. out_timings may be NULL. */
FunnelStatus funnel_model_recommend(const FunnelModel* model, const FunnelFeatures* user, const FunnelCascadeRequest* request,
                                    const char** out_keys, size_t* out_key_lengths, float* out_scores, size_t* out_count,
                                    FunnelCascadeTimings* out_timings);

#ifdef __cplusplus
}
#endif

#endif /* FUNNEL_C_H */
