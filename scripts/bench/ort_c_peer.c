/* The peer of the C API benchmark: ONNX Runtime's own C API, as a minimal C program would use it.
 * Loads the library with dlopen, opens MODEL on the CPU provider, feeds one float32 input read
 * from a raw file, runs once and prints the index of the largest output value: process start
 * to first answer, as examples/c/classify.c does through Prism.
 *
 *   ort_c_peer LIBONNXRUNTIME MODEL INPUT_NAME OUTPUT_NAME INPUT.f32 THREADS DIM...
 *
 * Function positions in the OrtApi table come from ort_api_index.h (scripts/bench/ort_api_index.py). */

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ort_api_index.h"

typedef void *Status;
typedef struct { void *(*GetApi)(uint32_t); const char *(*GetVersionString)(void); } OrtApiBase;
static void *const *api;
#define CALL(type, name, ...) ((type)api[ORT_##name])(__VA_ARGS__)

static void check(Status status, const char *what) {
  if (status) {
    fprintf(stderr, "ort_c_peer: %s: %s\n", what, CALL(const char *(*)(Status), GetErrorMessage, status));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: ort_c_peer LIB MODEL INPUT_NAME OUTPUT_NAME INPUT.f32 THREADS DIM...\n");
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) return fprintf(stderr, "ort_c_peer: %s\n", dlerror()), 1;
  const OrtApiBase *(*get_base)(void) = (const OrtApiBase *(*)(void))dlsym(lib, "OrtGetApiBase");
  api = get_base ? get_base()->GetApi(20) : NULL;
  if (!api) return fprintf(stderr, "ort_c_peer: no OrtApi version 20 in %s\n", argv[1]), 1;

  size_t rank = (size_t)(argc - 7), count = 1;
  int64_t shape[8];
  for (size_t i = 0; i < rank && i < 8; i++) count *= (size_t)(shape[i] = atoll(argv[7 + i]));
  float *input = malloc(count * sizeof *input);
  FILE *f = fopen(argv[5], "rb");
  if (!input || !f || fread(input, sizeof *input, count, f) != count)
    return fprintf(stderr, "ort_c_peer: cannot read %zu floats from %s\n", count, argv[5]), 1;
  fclose(f);

  void *env, *options, *session, *memory, *value, *output = NULL;
  check(CALL(Status (*)(int, const char *, void **), CreateEnv, 3 /* error */, "peer", &env), "CreateEnv");
  check(CALL(Status (*)(void **), CreateSessionOptions, &options), "CreateSessionOptions");
  check(CALL(Status (*)(void *, int), SetIntraOpNumThreads, options, atoi(argv[6])), "SetIntraOpNumThreads");
  check(CALL(Status (*)(void *, const char *, void *, void **), CreateSession, env, argv[2], options, &session),
        "CreateSession");
  check(CALL(Status (*)(int, int, void **), CreateCpuMemoryInfo, 1 /* arena */, 0 /* default */, &memory),
        "CreateCpuMemoryInfo");
  check(CALL(Status (*)(void *, void *, size_t, const int64_t *, size_t, int, void **), CreateTensorWithDataAsOrtValue,
             memory, input, count * sizeof *input, shape, rank, 1 /* float */, &value),
        "CreateTensorWithDataAsOrtValue");
  const char *in_names[] = {argv[3]}, *out_names[] = {argv[4]};
  check(CALL(Status (*)(void *, void *, const char *const *, const void *const *, size_t, const char *const *, size_t,
                        void **),
             Run, session, NULL, in_names, (const void *const *)&value, 1, out_names, 1, &output),
        "Run");
  float *scores;
  check(CALL(Status (*)(void *, void **), GetTensorMutableData, output, (void **)&scores), "GetTensorMutableData");
  /* An answer that needs the output: the position of the largest of its first 1000 values. */
  size_t classes = 0, best = 0;
  for (; classes < 1000 && classes < count; classes++)
    if (scores[classes] > scores[best]) best = classes;
  printf("{\"answer\": %zu}\n", best);
  CALL(void (*)(void *), ReleaseValue, output);
  CALL(void (*)(void *), ReleaseValue, value);
  CALL(void (*)(void *), ReleaseMemoryInfo, memory);
  CALL(void (*)(void *), ReleaseSession, session);
  CALL(void (*)(void *), ReleaseSessionOptions, options);
  CALL(void (*)(void *), ReleaseEnv, env);
  free(input);
  return 0;
}
