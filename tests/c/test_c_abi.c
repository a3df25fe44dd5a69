/* The C ABI from a C program, as an app would use it: load (path and memory), inspect, retrieve, embed,
 * rank, pre-rank, the cascade, errors and NULLs, non-finite numbers, free. Reads the golden files in tests/data/golden; the expected
 * answers are those recorded in tests/data/golden/expected.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "funnel_c.h"

static int checks = 0, failures = 0;

#define CHECK(condition)                                                                          \
  do {                                                                                            \
    ++checks;                                                                                     \
    if (!(condition)) {                                                                           \
      ++failures;                                                                                 \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #condition, \
              funnel_last_error());                                                               \
    }                                                                                             \
  } while (0)

static const char* golden(const char* name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/tests/data/golden/%s", FUNNEL_SOURCE_DIR, name);
  return path;
}

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  const long length = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* data = malloc((size_t)length);
  *size = fread(data, 1, (size_t)length, f);
  fclose(f);
  return data;
}

static int key_is(const char* key, size_t length, const char* expected) {
  return key && length == strlen(expected) && memcmp(key, expected, length) == 0;
}

/* The user of expected.json's retrieval answers. */
static FunnelFeatures* user_u3(void) {
  FunnelFeatures* user = funnel_features_new();
  CHECK(funnel_features_set_string(user, "user_id", "u3") == FUNNEL_OK);
  CHECK(funnel_features_set_number(user, "age", 41) == FUNNEL_OK);
  CHECK(funnel_features_set_string(user, "region", "r2") == FUNNEL_OK);
  CHECK(funnel_features_set_string(user, "device", "ios") == FUNNEL_OK);
  return user;
}

static void test_errors(void) {
  FunnelModel* model = (FunnelModel*)1;
  CHECK(funnel_model_load_file("/no/such/file.funnel", &model) != FUNNEL_OK);
  CHECK(model == NULL);
  CHECK(strstr(funnel_last_error(), "/no/such/file.funnel") != NULL);
  const char garbage[64] = "not a model file";
  CHECK(funnel_model_load_bytes(garbage, sizeof garbage, &model) == FUNNEL_CORRUPT_MODEL);
  CHECK(strlen(funnel_last_error()) > 0);
  CHECK(funnel_model_load_bytes(NULL, 10, &model) == FUNNEL_INVALID_ARGUMENT);
  CHECK(funnel_model_load_file(NULL, &model) == FUNNEL_INVALID_ARGUMENT);
  funnel_model_free(NULL); /* allowed, like free(NULL) */
}

static void test_inspect(const FunnelModel* model) {
  CHECK(funnel_model_format_version(model) == 2);
  CHECK(funnel_model_verify(model) == FUNNEL_OK);
  CHECK(funnel_model_has_checksums(model) == 0); /* format 2: none */
  CHECK(funnel_model_has_checksums(NULL) == 0);
  CHECK(funnel_model_verify(NULL) == FUNNEL_INVALID_ARGUMENT);
  CHECK(strncmp(funnel_model_producer(model), "funnel-train ", 13) == 0);
  CHECK(funnel_model_byte_size(model) > 0);
  CHECK(funnel_model_has_retrieval(model) == 1);
  CHECK(funnel_model_has_ranking(model) == 0);
  CHECK(funnel_model_feature_count(model) == 8);
  FunnelFeatureInfo feature;
  CHECK(funnel_model_feature_info(model, 0, &feature) == FUNNEL_OK);
  CHECK(strcmp(feature.name, "user_id") == 0 && strcmp(feature.kind, "categorical") == 0 && feature.cardinality > 0);
  CHECK(funnel_model_feature_info(model, 6, &feature) == FUNNEL_OK);
  CHECK(strcmp(feature.name, "price") == 0 && strcmp(feature.kind, "dense") == 0);
  CHECK(funnel_model_feature_info(model, 8, &feature) == FUNNEL_NOT_FOUND);

  int found_catalogue = 0;
  size_t tensor_bytes = 0;
  for (size_t t = 0; t < funnel_model_tensor_count(model); ++t) {
    FunnelTensorInfo tensor;
    CHECK(funnel_model_tensor_info(model, t, &tensor) == FUNNEL_OK);
    CHECK(strcmp(tensor.dtype, "f32") == 0);
    tensor_bytes += tensor.bytes;
    if (key_is(tensor.name, tensor.name_length, "catalogue/embeddings")) {
      found_catalogue = 1;
      CHECK(tensor.rank == 2);
      CHECK(tensor.shape[0] == funnel_model_catalogue_size(model) && tensor.shape[1] == funnel_model_embedding_dim(model));
      CHECK(tensor.bytes == tensor.shape[0] * tensor.shape[1] * 4);
    }
  }
  CHECK(found_catalogue);
  CHECK(tensor_bytes < funnel_model_byte_size(model));

  int found_dataset = 0;
  for (size_t m = 0; m < funnel_model_metadata_count(model); ++m) {
    const char *key = NULL, *value = NULL;
    CHECK(funnel_model_metadata(model, m, &key, &value) == FUNNEL_OK);
    if (strcmp(key, "dataset") == 0) found_dataset = strcmp(value, "synthetic") == 0;
  }
  CHECK(found_dataset);
}

static void test_retrieval(const FunnelModel* model) {
  FunnelFeatures* user = user_u3();
  const char* exclude[] = {"i1", "i2"};
  uint32_t indices[10];
  float scores[10];
  size_t count = 0;
  CHECK(funnel_model_retrieve(model, user, 10, exclude, 2, indices, scores, &count) == FUNNEL_OK);
  CHECK(count == 10);
  size_t length = 0;
  const char* first = funnel_model_item_key(model, indices[0], &length);
  CHECK(key_is(first, length, "i24")); /* expected.json */
  CHECK(fabsf(scores[0] - 0.65010666f) < 1e-5f);
  for (size_t i = 1; i < count; ++i) CHECK(scores[i] <= scores[i - 1]);

  /* The cascade on a retrieval-only file is retrieval. */
  FunnelCascadeRequest request;
  memset(&request, 0, sizeof request);
  request.exclude = exclude;
  request.exclude_count = 2;
  const char* keys[10];
  size_t lengths[10];
  float cascade_scores[10];
  FunnelCascadeTimings timings;
  CHECK(funnel_model_recommend(model, user, &request, keys, lengths, cascade_scores, &count, &timings) == FUNNEL_OK);
  CHECK(count == 10);
  for (size_t i = 0; i < count; ++i) {
    size_t expected_length = 0;
    const char* expected = funnel_model_item_key(model, indices[i], &expected_length);
    CHECK(lengths[i] == expected_length && memcmp(keys[i], expected, lengths[i]) == 0);
    CHECK(cascade_scores[i] == scores[i]);
  }
  CHECK(timings.retrieval_ms >= 0.0 && isnan(timings.ranking_ms) && isnan(timings.pre_ranking_ms) && timings.total_ms >= timings.retrieval_ms);

  /* The user's embedding is unit length (the towers end in L2 normalisation). */
  float embedding[256];
  CHECK(funnel_model_embedding_dim(model) <= 256);
  CHECK(funnel_model_user_embedding(model, user, embedding) == FUNNEL_OK);
  double norm = 0.0;
  for (size_t k = 0; k < funnel_model_embedding_dim(model); ++k) norm += (double)embedding[k] * embedding[k];
  CHECK(fabs(norm - 1.0) < 1e-4);

  /* A cold-start item through the item tower: unit length too; its item features are required. */
  FunnelFeatures* item = funnel_features_new();
  funnel_features_set_string(item, "item_id", "a-new-item");
  funnel_features_set_string(item, "category", "c1");
  funnel_features_set_number(item, "price", 9.5);
  funnel_features_add_to_list(item, "tags", "t1");
  CHECK(funnel_model_item_embedding(model, item, embedding) == FUNNEL_OK);
  norm = 0.0;
  for (size_t k = 0; k < funnel_model_embedding_dim(model); ++k) norm += (double)embedding[k] * embedding[k];
  CHECK(fabs(norm - 1.0) < 1e-4);
  CHECK(funnel_model_item_embedding(model, user, embedding) == FUNNEL_INVALID_ARGUMENT); /* a user is no item */
  funnel_features_free(item);

  /* A missing feature is an error that names it; nothing is written. */
  FunnelFeatures* partial = funnel_features_new();
  funnel_features_set_string(partial, "user_id", "u3");
  count = 99;
  CHECK(funnel_model_retrieve(model, partial, 10, NULL, 0, indices, scores, &count) == FUNNEL_INVALID_ARGUMENT);
  CHECK(strstr(funnel_last_error(), "age") != NULL);
  CHECK(funnel_model_retrieve(NULL, user, 10, NULL, 0, indices, scores, &count) == FUNNEL_INVALID_ARGUMENT);
  funnel_features_free(partial);
  funnel_features_free(user);
}

static void test_ranking(const FunnelModel* model) {
  CHECK(funnel_model_has_ranking(model) == 1);
  CHECK(funnel_model_has_retrieval(model) == 0);
  FunnelFeatures* user = user_u3();
  const char* behaviours[] = {"i5", "i6"};
  const char* candidates[] = {"i1", "i2", "i3", "i4"};
  float probabilities[4];
  CHECK(funnel_model_rank(model, user, behaviours, 2, candidates, 4, probabilities) == FUNNEL_OK);
  for (int i = 0; i < 4; ++i) CHECK(probabilities[i] > 0.0f && probabilities[i] < 1.0f);

  FunnelCascadeRequest request;
  memset(&request, 0, sizeof request);
  request.k = 3;
  request.behaviours = behaviours;
  request.behaviour_count = 2;
  request.candidates = candidates;
  request.candidate_count = 4;
  const char* keys[3];
  size_t lengths[3], count = 0;
  float scores[3];
  CHECK(funnel_model_recommend(model, user, &request, keys, lengths, scores, &count, NULL) == FUNNEL_OK);
  CHECK(count == 3);
  for (size_t i = 0; i < count; ++i) {
    int matched = 0;
    for (int c = 0; c < 4; ++c)
      if (key_is(keys[i], lengths[i], candidates[c])) matched = scores[i] == probabilities[c];
    CHECK(matched);
    if (i > 0) CHECK(scores[i] <= scores[i - 1]);
  }
  const char* unknown[] = {"i1", "no-such-item"};
  CHECK(funnel_model_rank(model, user, NULL, 0, unknown, 2, probabilities) == FUNNEL_NOT_FOUND);
  CHECK(strstr(funnel_last_error(), "no-such-item") != NULL);
  /* No pre-ranking stage here: funnel_model_prerank says so. */
  CHECK(funnel_model_has_pre_ranking(model) == 0);
  CHECK(funnel_model_prerank(model, user, behaviours, 2, candidates, 4, probabilities) == FUNNEL_INVALID_ARGUMENT);
  CHECK(strstr(funnel_last_error(), "no pre-ranking stage") != NULL);
  funnel_features_free(user);
}

/* The file with every stage: pre-ranking scores as recorded, and the cascade retrieves, pre-ranks to prerank_k
 * and ranks to k, timing each stage. */
/* The cascade request of expected.json: retrieve 20, pre-rank to 10, keep 5. */
static FunnelCascadeRequest cascade_request(void) {
  FunnelCascadeRequest request;
  memset(&request, 0, sizeof request);
  request.k = 5;
  request.retrieve_k = 20;
  request.prerank_k = 10;
  return request;
}

static void test_three_stages(const FunnelModel* model) {
  CHECK(funnel_model_has_retrieval(model) == 1);
  CHECK(funnel_model_has_pre_ranking(model) == 1);
  CHECK(funnel_model_has_ranking(model) == 1);
  FunnelFeatures* user = user_u3();
  const char* behaviours[] = {"i3", "i8", "i21", "i8", "unseen"};
  const char* candidates[] = {"i5", "i9", "i0", "i39"};
  float probabilities[4];
  CHECK(funnel_model_prerank(model, user, behaviours, 5, candidates, 4, probabilities) == FUNNEL_OK);
  CHECK(fabsf(probabilities[0] - 0.484119176864624f) < 2e-5f); /* expected.json */
  CHECK(fabsf(probabilities[3] - 0.5069833397865295f) < 2e-5f);

  const char* exclude[] = {"i1", "i2"};
  FunnelCascadeRequest request = cascade_request();
  request.behaviours = behaviours;
  request.behaviour_count = 3;
  request.exclude = exclude;
  request.exclude_count = 2;
  const char* keys[5];
  size_t lengths[5], count = 0;
  float scores[5];
  FunnelCascadeTimings timings;
  CHECK(funnel_model_recommend(model, user, &request, keys, lengths, scores, &count, &timings) == FUNNEL_OK);
  CHECK(count == 5);
  CHECK(key_is(keys[0], lengths[0], "i27")); /* expected.json */
  CHECK(fabsf(scores[0] - 0.5541293621063232f) < 2e-5f);
  for (size_t i = 1; i < count; ++i) CHECK(scores[i] <= scores[i - 1]);
  CHECK(timings.retrieval_ms >= 0.0 && timings.pre_ranking_ms >= 0.0 && timings.ranking_ms >= 0.0);
  CHECK(timings.total_ms >= timings.retrieval_ms + timings.pre_ranking_ms + timings.ranking_ms);
  /* Ranking left out: pre-ranking's order is final, and the skipped stage's time reads NaN. */
  request.skip = FUNNEL_SKIP_RANKING;
  CHECK(funnel_model_recommend(model, user, &request, keys, lengths, scores, &count, &timings) == FUNNEL_OK);
  CHECK(count == 5);
  CHECK(isnan(timings.ranking_ms) && timings.pre_ranking_ms >= 0.0);
  for (size_t i = 1; i < count; ++i) CHECK(scores[i] <= scores[i - 1]);
  request.skip = FUNNEL_SKIP_PRE_RANKING | FUNNEL_SKIP_RANKING;
  CHECK(funnel_model_recommend(model, user, &request, keys, lengths, scores, &count, &timings) == FUNNEL_OK);
  CHECK(isnan(timings.ranking_ms) && isnan(timings.pre_ranking_ms));
  request.skip = 4;
  CHECK(funnel_model_recommend(model, user, &request, keys, lengths, scores, &count, &timings) == FUNNEL_INVALID_ARGUMENT);
  CHECK(strstr(funnel_last_error(), "skip") != NULL);
  const char* unknown[] = {"no-such-item"};
  CHECK(funnel_model_prerank(model, user, NULL, 0, unknown, 1, probabilities) == FUNNEL_NOT_FOUND);
  CHECK(strstr(funnel_last_error(), "no-such-item") != NULL);
  funnel_features_free(user);
}

/* Batched retrieval equals one call per user; a catalogue update adds a cold-start item and removes one,
 * the updated model saves and loads back, and the original is untouched. */
static void test_batch_and_updates(const FunnelModel* model) {
  CHECK(strcmp(funnel_model_catalogue_precision(model), "f32") == 0);
  FunnelFeatures* users[2] = {user_u3(), user_u3()};
  funnel_features_set_string(users[1], "user_id", "u17");
  uint32_t batch_indices[2 * 5], single_indices[5];
  float batch_scores[2 * 5], single_scores[5];
  size_t counts[2] = {0, 0}, count = 0;
  const char* exclude[] = {"i1"};
  CHECK(funnel_model_retrieve_batch(model, (const FunnelFeatures* const*)users, 2, 5, exclude, 1, 2, batch_indices,
                                    batch_scores, counts) == FUNNEL_OK);
  for (int u = 0; u < 2; ++u) {
    CHECK(funnel_model_retrieve(model, users[u], 5, exclude, 1, single_indices, single_scores, &count) == FUNNEL_OK);
    CHECK(counts[u] == count);
    for (size_t i = 0; i < count; ++i) CHECK(batch_indices[u * 5 + i] == single_indices[i] && batch_scores[u * 5 + i] == single_scores[i]);
  }
  CHECK(funnel_model_retrieve_batch(model, NULL, 2, 5, NULL, 0, 1, batch_indices, batch_scores, counts) ==
        FUNNEL_INVALID_ARGUMENT);
  /* A call that fails leaves every count 0, not the previous call's (here 5 and 5). */
  CHECK(counts[0] > 0 && counts[1] > 0);
  const FunnelFeatures* half[2] = {users[0], NULL};
  CHECK(funnel_model_retrieve_batch(model, half, 2, 5, NULL, 0, 1, batch_indices, batch_scores, counts) ==
        FUNNEL_INVALID_ARGUMENT);
  CHECK(counts[0] == 0 && counts[1] == 0);
  CHECK(funnel_model_retrieve_batch(model, (const FunnelFeatures* const*)users, 2, 5, exclude, 1, 2, batch_indices,
                                    batch_scores, counts) == FUNNEL_OK);
  CHECK(funnel_model_retrieve_batch(model, (const FunnelFeatures* const*)users, 2, 0, NULL, 0, 1, batch_indices,
                                    batch_scores, counts) != FUNNEL_OK);
  CHECK(counts[0] == 0 && counts[1] == 0);

  FunnelFeatures* item = funnel_features_new();
  funnel_features_set_string(item, "item_id", "brand-new");
  funnel_features_set_string(item, "category", "c1");
  funnel_features_set_number(item, "price", 9.5);
  funnel_features_add_to_list(item, "tags", "t1");
  const char* add_keys[] = {"brand-new"};
  const FunnelFeatures* add_features[] = {item};
  const char* remove_keys[] = {"i2"};
  FunnelModel* updated = NULL;
  CHECK(funnel_model_update_catalogue(model, add_keys, add_features, 1, remove_keys, 1, &updated) == FUNNEL_OK);
  if (updated) {
    const size_t n = funnel_model_catalogue_size(updated);
    CHECK(n == funnel_model_catalogue_size(model));
    size_t length = 0;
    const char* last = funnel_model_item_key(updated, n - 1, &length);
    CHECK(key_is(last, length, "brand-new"));
    char path[4200];
    snprintf(path, sizeof path, "%s/funnel-c-abi-test-%ld.funnel", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)clock());
    CHECK(funnel_model_save(updated, path) == FUNNEL_OK);
    FunnelModel* reloaded = NULL;
    CHECK(funnel_model_load_file(path, &reloaded) == FUNNEL_OK);
    size_t a = 0, b = 0;
    const uint8_t* x = funnel_model_bytes(updated, &a);
    const uint8_t* y = funnel_model_bytes(reloaded, &b);
    CHECK(a == b && a > 0 && memcmp(x, y, a) == 0);
    funnel_model_free(reloaded);
    remove(path);
    funnel_model_free(updated);
  }
  updated = (FunnelModel*)1;
  const char* unknown[] = {"no-such-item"};
  CHECK(funnel_model_update_catalogue(model, NULL, NULL, 0, unknown, 1, &updated) == FUNNEL_INVALID_ARGUMENT);
  CHECK(updated == NULL);
  CHECK(strstr(funnel_last_error(), "no-such-item") != NULL);
  CHECK(funnel_model_save(model, "/nonexistent-dir/x.funnel") == FUNNEL_IO_ERROR);
  funnel_features_free(item);
  funnel_features_free(users[0]);
  funnel_features_free(users[1]);
}

/* retrieval.funnel's catalogue in its bytes: the only run of 40 rows of 4 unit-length floats. -1 if none or several. */
static long catalogue_offset(const unsigned char* bytes, size_t size) {
  long found = -1;
  int runs = 0;
  for (size_t at = 0; at + 40 * 16 <= size; at += 4) {
    int row = 0;
    for (; row < 40; ++row) {
      float v[4];
      memcpy(v, bytes + at + 16 * (size_t)row, sizeof v);
      const double norm = (double)v[0] * v[0] + (double)v[1] * v[1] + (double)v[2] * v[2] + (double)v[3] * v[3];
      if (!(fabs(norm - 1.0) < 1e-4)) break;
    }
    if (row == 40) {
      found = (long)at;
      ++runs;
    }
  }
  return runs == 1 ? found : -1;
}

/* Non-finite numbers. NaN and infinities are refused naming the feature: a number by
 * funnel_features_set_number, a string that reads as one ("nan", "inf") by the call that reads it, in
 * every call; a catalogue update names the item. A catalogue row that scores infinity is an error naming
 * the row, never a score. Afterwards the model answers as before. */
static void test_non_finite(const FunnelModel* model, const FunnelModel* three) {
  FunnelFeatures* user = user_u3();
  const char* exclude[] = {"i1", "i2"};
  uint32_t indices[10];
  float scores[10];
  size_t count = 0, length = 0;
  const char* first = NULL;
  const double numbers[] = {NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 3; ++i) {
    CHECK(funnel_features_set_number(user, "age", numbers[i]) == FUNNEL_INVALID_ARGUMENT);
    CHECK(strstr(funnel_last_error(), "feature 'age' is") != NULL && strstr(funnel_last_error(), "not a finite number") != NULL);
  }
  /* Nothing refused was kept: the user is still u3 (expected.json). */
  CHECK(funnel_model_retrieve(model, user, 10, exclude, 2, indices, scores, &count) == FUNNEL_OK && count == 10);
  first = funnel_model_item_key(model, indices[0], &length);
  CHECK(key_is(first, length, "i24") && fabsf(scores[0] - 0.65010666f) < 1e-5f);

  const char* texts[] = {"nan", "NaN", "inf", "-inf", "Infinity"};
  const char* behaviours[] = {"i3"};
  const char* candidates[] = {"i5", "i9"};
  const char* keys[10];
  size_t lengths[10];
  float probabilities[2];
  const FunnelCascadeRequest request = cascade_request();
  for (int i = 0; i < 5; ++i) {
    FunnelFeatures* bad = user_u3();
    CHECK(funnel_features_set_string(bad, "age", texts[i]) == FUNNEL_OK); /* a string: read by the call */
    CHECK(funnel_model_retrieve(model, bad, 10, NULL, 0, indices, scores, &count) == FUNNEL_INVALID_ARGUMENT);
    CHECK(strstr(funnel_last_error(), "feature 'age'") != NULL && strstr(funnel_last_error(), "not a finite number") != NULL);
    CHECK(funnel_model_rank(three, bad, behaviours, 1, candidates, 2, probabilities) == FUNNEL_INVALID_ARGUMENT);
    CHECK(funnel_model_prerank(three, bad, behaviours, 1, candidates, 2, probabilities) == FUNNEL_INVALID_ARGUMENT);
    CHECK(funnel_model_recommend(three, bad, &request, keys, lengths, scores, &count, NULL) == FUNNEL_INVALID_ARGUMENT);
    CHECK(strstr(funnel_last_error(), "feature 'age'") != NULL);
    funnel_features_free(bad);
  }

  /* `price` is dense: "inf" is refused, and a catalogue update names the item; 1e300 overflows once normalised. */
  FunnelFeatures* item = funnel_features_new();
  funnel_features_set_string(item, "item_id", "broken");
  funnel_features_set_string(item, "category", "c1");
  funnel_features_set_string(item, "price", "inf");
  funnel_features_add_to_list(item, "tags", "t1");
  float embedding[256];
  CHECK(funnel_model_item_embedding(model, item, embedding) == FUNNEL_INVALID_ARGUMENT);
  CHECK(strstr(funnel_last_error(), "feature 'price' is inf") != NULL);
  const char* add_keys[] = {"broken"};
  const FunnelFeatures* add_features[] = {item};
  FunnelModel* updated = (FunnelModel*)1;
  CHECK(funnel_model_update_catalogue(model, add_keys, add_features, 1, NULL, 0, &updated) == FUNNEL_INVALID_ARGUMENT);
  CHECK(updated == NULL && strstr(funnel_last_error(), "item 'broken': feature 'price'") != NULL);
  CHECK(funnel_features_set_number(item, "price", 1e300) == FUNNEL_OK);
  CHECK(funnel_model_item_embedding(model, item, embedding) == FUNNEL_INVALID_ARGUMENT);
  CHECK(strstr(funnel_last_error(), "once normalised") != NULL);
  funnel_features_free(item);

  /* Row 7 of a copy of the file holds an infinity of the query's sign: it scores +inf, the first hit of any request. */
  size_t size = 0;
  const uint8_t* original = funnel_model_bytes(model, &size);
  unsigned char* copy = malloc(size);
  memcpy(copy, original, size);
  const long offset = catalogue_offset(copy, size);
  CHECK(offset >= 0);
  CHECK(funnel_model_user_embedding(model, user, embedding) == FUNNEL_OK);
  int d = 0;
  while (d < 3 && embedding[d] == 0.0f) ++d;
  FunnelModel* poisoned = NULL;
  if (offset >= 0) {
    const float inf = embedding[d] > 0.0f ? INFINITY : -INFINITY;
    memcpy(copy + offset + 16 * 7 + 4 * d, &inf, sizeof inf);
    CHECK(funnel_model_load_bytes(copy, size, &poisoned) == FUNNEL_OK);
  }
  free(copy);
  if (poisoned) {
    count = 99;
    CHECK(funnel_model_retrieve(poisoned, user, 1, NULL, 0, indices, scores, &count) == FUNNEL_CORRUPT_MODEL);
    CHECK(count == 0 && strstr(funnel_last_error(), "the score of row 7 is inf") != NULL);
    FunnelCascadeRequest plain;
    memset(&plain, 0, sizeof plain);
    CHECK(funnel_model_recommend(poisoned, user, &plain, keys, lengths, scores, &count, NULL) == FUNNEL_CORRUPT_MODEL);
    const char* without_row_7[] = {"i7"};
    CHECK(funnel_model_retrieve(poisoned, user, 10, without_row_7, 1, indices, scores, &count) == FUNNEL_OK && count == 10);
    for (size_t i = 0; i < count; ++i) CHECK(isfinite(scores[i]));
    funnel_model_free(poisoned);
  }
  CHECK(funnel_model_retrieve(model, user, 10, exclude, 2, indices, scores, &count) == FUNNEL_OK && count == 10);
  first = funnel_model_item_key(model, indices[0], &length);
  CHECK(key_is(first, length, "i24") && fabsf(scores[0] - 0.65010666f) < 1e-5f);
  funnel_features_free(user);
}

int main(void) {
  CHECK(funnel_version() != NULL && strlen(funnel_version()) > 0);
  test_errors();

  FunnelModel* from_path = NULL;
  CHECK(funnel_model_load_file(golden("retrieval.funnel"), &from_path) == FUNNEL_OK);
  if (from_path) {
    test_inspect(from_path);
    test_retrieval(from_path);
    test_batch_and_updates(from_path);
    funnel_model_free(from_path);
  }
  size_t size = 0;
  unsigned char* bytes = read_file(golden("retrieval.funnel"), &size);
  CHECK(bytes != NULL);
  FunnelModel* from_memory = NULL;
  CHECK(bytes && funnel_model_load_bytes(bytes, size, &from_memory) == FUNNEL_OK);
  free(bytes); /* the model keeps its own copy */
  if (from_memory) {
    test_retrieval(from_memory);
    funnel_model_free(from_memory);
  }
  FunnelModel* ranker = NULL;
  CHECK(funnel_model_load_file(golden("ranking-can.funnel"), &ranker) == FUNNEL_OK);
  if (ranker) {
    test_ranking(ranker);
    funnel_model_free(ranker);
  }
  FunnelModel* three = NULL;
  CHECK(funnel_model_load_file(golden("three-stages.funnel"), &three) == FUNNEL_OK);
  if (three) {
    test_three_stages(three);
    FunnelModel* retrieval = NULL;
    CHECK(funnel_model_load_file(golden("retrieval.funnel"), &retrieval) == FUNNEL_OK);
    if (retrieval) test_non_finite(retrieval, three);
    funnel_model_free(retrieval);
    funnel_model_free(three);
  }
  /* The whole funnel as `funnel train-funnel` writes it: three stages, one call. */
  FunnelModel* trained = NULL;
  CHECK(funnel_model_load_file(golden("three-stages-trained.funnel"), &trained) == FUNNEL_OK);
  if (trained) {
    CHECK(funnel_model_has_retrieval(trained) == 1 && funnel_model_has_pre_ranking(trained) == 1 && funnel_model_has_ranking(trained) == 1);
    CHECK(funnel_model_verify(trained) == FUNNEL_OK);
    FunnelFeatures* user = user_u3();
    const FunnelCascadeRequest request = cascade_request();
    const char* keys[5];
    size_t lengths[5], count = 0;
    float scores[5];
    FunnelCascadeTimings timings;
    CHECK(funnel_model_recommend(trained, user, &request, keys, lengths, scores, &count, &timings) == FUNNEL_OK);
    CHECK(count == 5 && timings.pre_ranking_ms >= 0.0 && timings.ranking_ms >= 0.0);
    funnel_features_free(user);
    funnel_model_free(trained);
  }
  /* A format 3 file carries checksums: it verifies as written, and a flipped byte that still loads fails
   * funnel_model_verify with a message naming what changed. */
  FunnelModel* checked = NULL;
  CHECK(funnel_model_load_file(golden("three-stages-v3.funnel"), &checked) == FUNNEL_OK);
  if (checked) {
    CHECK(funnel_model_format_version(checked) == 3 && funnel_model_has_checksums(checked) == 1);
    CHECK(funnel_model_verify(checked) == FUNNEL_OK);
    funnel_model_free(checked);
  }
  size_t v3_size = 0;
  unsigned char* v3 = read_file(golden("three-stages-v3.funnel"), &v3_size);
  int found = 0;
  for (size_t at = v3_size / 2; v3 && at < v3_size / 2 + 64; ++at) {
    v3[at] ^= 0x10;
    FunnelModel* damaged = NULL;
    if (funnel_model_load_bytes(v3, v3_size, &damaged) == FUNNEL_OK) {
      CHECK(funnel_model_verify(damaged) == FUNNEL_CORRUPT_MODEL);
      CHECK(strstr(funnel_last_error(), "checksum") != NULL);
      funnel_model_free(damaged);
      ++found;
    }
    v3[at] ^= 0x10;
  }
  CHECK(found > 0);
  free(v3);
  printf("C ABI: %d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
