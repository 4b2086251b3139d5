/* onellm_client.h — what an app links against to use the device's onellm
 * service. Plain C, no dependencies in the header. Every call is blocking and
 * thread-compatible (use one client per thread). Errors: a negative return,
 * with onellm_last_error() / onellm_last_error_code() saying what happened
 * (codes: BUSY, QUOTA_EXCEEDED, CONTEXT_TOO_LONG, UNKNOWN_SESSION, FORBIDDEN,
 * MODEL_UNAVAILABLE, BAD_REQUEST, or CONNECT / PROTOCOL for local failures). */
#ifndef ONELLM_CLIENT_H
#define ONELLM_CLIENT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onellm_client onellm_client;

enum {
  ONELLM_OK = 0,
  ONELLM_ERR_CONNECT = -1,  /* cannot reach the service */
  ONELLM_ERR_PROTOCOL = -2, /* the reply was not what the API promises */
  ONELLM_ERR_SERVICE = -3,  /* the service answered with a typed error */
  ONELLM_ERR_ARGUMENT = -4,
};

/* address: NULL for the default socket ($XDG_RUNTIME_DIR/onellm.sock or
 * /tmp/onellm-UID.sock), "unix:/path/to.sock", or "http://127.0.0.1:PORT".
 * token: the app's bearer token, or NULL (Unix socket identity).
 * Never returns NULL except when out of memory; check onellm_last_error. */
onellm_client* onellm_client_new(const char* address, const char* token);
void onellm_client_free(onellm_client* client);

typedef struct onellm_options {
  int max_tokens;     /* <= 0: the service default */
  float temperature;  /* < 0: the service default */
  long long seed;     /* < 0: random */
  const char* qos;    /* NULL: the app's default class */
  int ignore_eos;     /* non-zero: generate max_tokens even past end-of-text (benchmarks) */
  const char* json_schema; /* NULL: free text; else a JSON Schema the reply must match (response_format) */
  const char* adapter;     /* onellm_chat: NULL for the base model, else a LoRA adapter the service serves
                              (serve --lora NAME=FILE). Sessions fix theirs when opened. */
} onellm_options;
void onellm_options_init(onellm_options* options);

/* Called with each piece of text as it is generated (complete UTF-8).
 * Return 0 to stop the generation, non-zero to continue. */
typedef int (*onellm_text_fn)(const char* text, size_t length, void* user);

/* Opens (or finds by name) a persistent session; writes its id (NUL-ended)
 * into id_out. */
int onellm_session_open(onellm_client* client, const char* name, const char* instructions, const char* qos,
                        char* id_out, size_t id_capacity);
/* The same for a session that runs with a LoRA adapter the service serves
 * (NULL: the base model), for the session's whole life. */
int onellm_session_open_with_adapter(onellm_client* client, const char* name, const char* instructions,
                                     const char* qos, const char* adapter, char* id_out, size_t id_capacity);
/* Sends a user message to a session and waits for the reply. on_text may be
 * NULL (no streaming). *reply_out (may be NULL) receives the whole reply,
 * to be released with onellm_string_free. */
int onellm_session_send(onellm_client* client, const char* session_id, const char* content,
                        const onellm_options* options, onellm_text_fn on_text, void* user, char** reply_out);
int onellm_session_delete(onellm_client* client, const char* session_id);
/* One stateless chat turn (/v1/chat/completions). */
int onellm_chat(onellm_client* client, const char* user_message, const onellm_options* options,
                onellm_text_fn on_text, void* user, char** reply_out);

const char* onellm_last_error(const onellm_client* client);
const char* onellm_last_error_code(const onellm_client* client);
void onellm_string_free(char* s);

#ifdef __cplusplus
}
#endif

#endif /* ONELLM_CLIENT_H */
