/* Classifies photos (JPEG, PNG) and hyperspectral scenes (.npy) through Prism's C API, and
 * prints one JSON line per input, as `runtime infer --json` does:
 *
 *   classify [options] MODEL.onnx INPUT...
 *     --engine auto|ort|tract   which engine runs the model (default auto)
 *     --threads N               threads within one graph run (default: every core)
 *     --top K                   labels per image (default 5)
 *     --imagenet                torchvision's ImageNet preprocessing, for models made elsewhere
 *     --labels FILE             class names, one per line, for models without Prism metadata
 *
 * Images:  {"file": ..., "engine": ..., "provider": ..., "top": [{"index", "label", "probability"}]}
 * Scenes:  {"file": ..., "engine": ..., "provider": ..., "height", "width", "labels": [...]}
 * A scene is a C-order .npy of height x width x bands float32 or uint16 values, read here by
 * a small reader (it is the program's data, not the library's business).
 *
 * Build: scripts/build-c-example.sh (or see docs/guide.md, "C and C++"). Exit 0 on success,
 * 1 with a one-line message on stderr on any error. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prism.h"

static int fail(const char *what) {
  fprintf(stderr, "classify: %s: %s\n", what, prism_last_error());
  return 1;
}

/* The whole file in memory; NULL (and a message) when it cannot be read. */
static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "classify: cannot open %s\n", path);
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  unsigned char *data = malloc(cap);
  for (size_t got; data && (got = fread(data + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) {
      unsigned char *bigger = realloc(data, cap *= 2);
      if (!bigger) free(data);
      data = bigger;
    }
  }
  fclose(f);
  if (!data) fprintf(stderr, "classify: out of memory reading %s\n", path);
  *len = n;
  return data;
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') putchar('\\');
    if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void print_head(const char *file, const PrismModelInfo *info) {
  printf("{\"file\": ");
  print_json_string(file);
  printf(", \"engine\": \"%s\", \"provider\": \"%s\"", info->engine, info->provider);
}

static int classify_image(const PrismModel *model, const PrismModelInfo *info, const char *path, size_t k) {
  size_t len = 0;
  unsigned char *bytes = read_file(path, &len);
  if (!bytes) return 1;
  PrismImage *image = NULL;
  PrismStatus status = prism_image_decode(bytes, len, &image);
  free(bytes);
  if (status != PRISM_STATUS_OK) return fail(path);
  PrismImageView view;
  PrismPrediction *top = calloc(k, sizeof *top);
  size_t written = 0;
  status = prism_image_view(image, &view);
  if (status == PRISM_STATUS_OK && top)
    status = prism_classify_rgb8(model, view.rgb, view.len, view.width, view.height, top, k, &written);
  if (status != PRISM_STATUS_OK || !top) {
    free(top);
    prism_image_free(image);
    return fail(path);
  }
  print_head(path, info);
  printf(", \"top\": [");
  for (size_t i = 0; i < written; i++) {
    printf("%s{\"index\": %zu, \"label\": ", i ? ", " : "", top[i].index);
    print_json_string(top[i].label);
    printf(", \"probability\": %.9g}", top[i].probability);
  }
  printf("]}\n");
  free(top);
  prism_image_free(image);
  return 0;
}

/* A C-order .npy of '<f4' or '<u2' values, 3-D. Returns the values (malloc'd) or NULL. */
static void *read_npy(const char *path, size_t shape[3], PrismElementType *type) {
  size_t len = 0;
  unsigned char *file = read_file(path, &len);
  if (!file) return NULL;
  const char *why = NULL;
  size_t start = len > 6 && file[6] == 1 ? 10 : 12, header = 0;
  char dict[4096] = {0};
  if (len < 12 || memcmp(file, "\x93NUMPY", 6) != 0) why = "not a .npy file";
  else {
    size_t dict_len = (size_t)file[8] | (size_t)file[9] << 8;
    if (start == 12) dict_len |= (size_t)file[10] << 16 | (size_t)file[11] << 24;
    header = start + dict_len;
    if (header > len || header - start >= sizeof dict) why = "bad header";
    else memcpy(dict, file + start, header - start);
  }
  if (!why && strstr(dict, "'fortran_order': True")) why = "Fortran order (save it with np.ascontiguousarray)";
  if (!why) {
    if (strstr(dict, "'<f4'")) *type = PRISM_ELEMENT_TYPE_F32;
    else if (strstr(dict, "'<u2'")) *type = PRISM_ELEMENT_TYPE_U16;
    else why = "not float32 or uint16 values";
  }
  const char *s = why ? NULL : strstr(dict, "'shape': (");
  if (!why && (!s || sscanf(s, "'shape': (%zu, %zu, %zu)", &shape[0], &shape[1], &shape[2]) != 3))
    why = "not height x width x bands";
  size_t size = *type == PRISM_ELEMENT_TYPE_F32 ? 4 : 2;
  if (!why && (len - header) / size / shape[2] / shape[1] < shape[0]) why = "shorter than its shape";
  if (why) {
    fprintf(stderr, "classify: %s: %s\n", path, why);
    free(file);
    return NULL;
  }
  void *values = malloc(shape[0] * shape[1] * shape[2] * size);
  if (values) memcpy(values, file + header, shape[0] * shape[1] * shape[2] * size);
  free(file);
  return values;
}

static int classify_scene(const PrismModel *model, const PrismModelInfo *info, const char *path) {
  size_t shape[3];
  PrismElementType type = PRISM_ELEMENT_TYPE_F32;
  void *values = read_npy(path, shape, &type);
  if (!values) return 1;
  size_t pixels = shape[0] * shape[1];
  int64_t *labels = malloc(pixels * sizeof *labels);
  PrismStatus status = labels ? prism_classify_scene(model, values, type, pixels * shape[2], shape[0], shape[1],
                                                     shape[2], labels, pixels)
                              : PRISM_STATUS_INVALID_ARGUMENT;
  free(values);
  if (status != PRISM_STATUS_OK) {
    free(labels);
    return fail(path);
  }
  print_head(path, info);
  printf(", \"height\": %zu, \"width\": %zu, \"labels\": [", shape[0], shape[1]);
  for (size_t i = 0; i < pixels; i++) printf("%s%lld", i ? ", " : "", (long long)labels[i]);
  printf("]}\n");
  free(labels);
  return 0;
}

/* Class names, one per line: the lines (malloc'd, in one block) and their count. */
static char **read_labels(const char *path, size_t *count) {
  size_t len = 0;
  unsigned char *text = read_file(path, &len);
  if (!text) return NULL;
  size_t lines = 1;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  char **names = malloc(lines * sizeof *names + len + 1);
  if (!names) {
    free(text);
    return NULL;
  }
  char *copy = (char *)(names + lines);
  memcpy(copy, text, len);
  copy[len] = '\0';
  free(text);
  *count = 0;
  for (char *line = strtok(copy, "\r\n"); line; line = strtok(NULL, "\r\n")) names[(*count)++] = line;
  return names;
}

int main(int argc, char **argv) {
  const char *engine = "auto", *labels_path = NULL;
  size_t threads = 0, top = 5;
  int imagenet = 0, i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (!strcmp(argv[i], "--imagenet")) imagenet = 1;
    else if (i + 1 < argc && !strcmp(argv[i], "--engine")) engine = argv[++i];
    else if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = strtoul(argv[++i], NULL, 10);
    else if (i + 1 < argc && !strcmp(argv[i], "--top")) top = strtoul(argv[++i], NULL, 10);
    else if (i + 1 < argc && !strcmp(argv[i], "--labels")) labels_path = argv[++i];
    else {
      fprintf(stderr, "classify: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (argc - i < 2 || top == 0) {
    fprintf(stderr, "usage: classify [--engine auto|ort|tract] [--threads N] [--top K] [--imagenet] "
                    "[--labels FILE] MODEL.onnx INPUT...\n");
    return 2;
  }

  PrismOptions *options = NULL;
  if (prism_options_new(&options) != PRISM_STATUS_OK) return fail("options");
  int failed = prism_options_set_engine(options, engine) != PRISM_STATUS_OK ||
               prism_options_set_threads(options, threads) != PRISM_STATUS_OK;
  if (!failed && imagenet) {
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    failed = prism_options_set_image_preprocessing(options, 256, 224, mean, std) != PRISM_STATUS_OK;
  }
  if (!failed && labels_path) {
    size_t count = 0;
    char **names = read_labels(labels_path, &count);
    failed = !names || prism_options_set_labels(options, (const char *const *)names, count) != PRISM_STATUS_OK;
    free(names);
  }
  PrismModel *model = NULL;
  if (failed || prism_model_open(argv[i], options, &model) != PRISM_STATUS_OK) {
    int code = fail(argv[i]);
    prism_options_free(options);
    return code;
  }
  prism_options_free(options); /* the model keeps what it was given */

  PrismModelInfo info;
  int code = prism_model_info(model, &info) != PRISM_STATUS_OK ? fail("info") : 0;
  for (i++; code == 0 && i < argc; i++) {
    if (info.task == PRISM_TASK_SCENE && ends_with(argv[i], ".npy")) code = classify_scene(model, &info, argv[i]);
    else if (info.task == PRISM_TASK_IMAGE) code = classify_image(model, &info, argv[i], top);
    else {
      fprintf(stderr, "classify: %s: a %s model takes %s\n", argv[i], info.task == PRISM_TASK_SCENE ? "scene" : "tensor",
              info.task == PRISM_TASK_SCENE ? ".npy scenes" : "raw tensors (prism_model_run)");
      code = 1;
    }
  }
  prism_model_free(model);
  return code;
}
