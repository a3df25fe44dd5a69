/* The native half of wasm/tools/bench_cascade.mjs: the same requests through the C ABI (funnel_model_recommend), the
 * SDK's own timings. Reads requests from stdin, one a line: features as name=value pairs separated by \t (a
 * value that is a whole number is set as a number, as the JS API does for JSON numbers), then \t|\t and the
 * behaviour keys separated by \t. For each request: the retrieval file's cascade (retrieve_k, leaving out the
 * behaviours), then the ranker's over those candidates when a ranker is given; prints one line per request
 * with the two files' total_ms, after `warmup` untimed passes over all requests.
 *   bench_cascade_native MODEL RANKER|- K RETRIEVE_K WARMUP < requests.tsv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "funnel_c.h"

#define MAX_FIELDS 256

static FunnelModel* load(const char* path) {
  FunnelModel* model = NULL;
  if (funnel_model_load_file(path, &model) != FUNNEL_OK) {
    fprintf(stderr, "%s: %s\n", path, funnel_last_error());
    exit(1);
  }
  return model;
}

int main(int argc, char** argv) {
  if (argc != 6) return fprintf(stderr, "usage: %s MODEL RANKER|- K RETRIEVE_K WARMUP < requests\n", argv[0]), 2;
  FunnelModel* model = load(argv[1]);
  FunnelModel* ranker = strcmp(argv[2], "-") ? load(argv[2]) : NULL;
  size_t k = strtoul(argv[3], NULL, 10), retrieve_k = strtoul(argv[4], NULL, 10);
  int warmup = atoi(argv[5]);
  static char lines[4096][4096];
  int n = 0;
  while (n < 4096 && fgets(lines[n], sizeof lines[n], stdin)) lines[n][strcspn(lines[n], "\n")] = 0, ++n;
  const char** keys = malloc(retrieve_k * sizeof *keys);
  size_t* lengths = malloc(retrieve_k * sizeof *lengths);
  float* scores = malloc(retrieve_k * sizeof *scores);
  char** candidates = malloc(retrieve_k * sizeof *candidates);
  for (int pass = 0; pass <= warmup; ++pass) {
    for (int r = 0; r < n; ++r) {
      char line[4096];
      strcpy(line, lines[r]);
      const char* fields[MAX_FIELDS];
      size_t count = 0, behaviour_start = 0;
      for (char* token = strtok(line, "\t"); token && count < MAX_FIELDS; token = strtok(NULL, "\t")) {
        if (!strcmp(token, "|")) behaviour_start = count;
        fields[count++] = token;
      }
      if (!behaviour_start) behaviour_start = count;
      const char* const* behaviours = fields + behaviour_start + (behaviour_start < count);
      size_t behaviour_count = behaviour_start < count ? count - behaviour_start - 1 : 0;
      FunnelFeatures* user = funnel_features_new();
      for (size_t i = 0; i < behaviour_start; ++i) {
        char* eq = strchr((char*)fields[i], '=');
        if (!eq) continue;
        *eq = 0;
        char* end;
        double number = strtod(eq + 1, &end);
        if (*end == 0 && eq[1] && eq[1] != ' ') funnel_features_set_number(user, fields[i], number);
        else funnel_features_set_string(user, fields[i], eq + 1);
      }
      FunnelCascadeRequest request;
      memset(&request, 0, sizeof request);
      request.k = retrieve_k;
      request.retrieve_k = retrieve_k;
      request.exclude = behaviours;
      request.exclude_count = behaviour_count;
      request.threads = 1;
      size_t got = 0;
      FunnelCascadeTimings t1, t2;
      t2.total_ms = 0;
      if (funnel_model_recommend(model, user, &request, keys, lengths, scores, &got, &t1) != FUNNEL_OK)
        return fprintf(stderr, "request %d: %s\n", r, funnel_last_error()), 1;
      if (ranker) {
        for (size_t i = 0; i < got; ++i) {
          candidates[i] = malloc(lengths[i] + 1);
          memcpy(candidates[i], keys[i], lengths[i]);
          candidates[i][lengths[i]] = 0;
        }
        FunnelCascadeRequest rank;
        memset(&rank, 0, sizeof rank);
        rank.k = k;
        rank.candidates = (const char* const*)candidates;
        rank.candidate_count = got;
        rank.behaviours = behaviours;
        rank.behaviour_count = behaviour_count;
        rank.threads = 1;
        size_t ranked = 0;
        FunnelStatus status = funnel_model_recommend(ranker, user, &rank, keys, lengths, scores, &ranked, &t2);
        for (size_t i = 0; i < got; ++i) free(candidates[i]);
        if (status != FUNNEL_OK) return fprintf(stderr, "request %d (ranking): %s\n", r, funnel_last_error()), 1;
      }
      if (pass == warmup) printf("%.6f %.6f\n", t1.total_ms, t2.total_ms);
      funnel_features_free(user);
    }
  }
  return 0;
}
