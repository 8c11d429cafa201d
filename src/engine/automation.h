/* automation.h: automations as durable state machines.
 *
 * An automation template ({name, steps, cancelation_token?}) is stored as a document
 * with numbered versions; a run keeps the version it started with. A run is a document
 * (context {data, profile, recipient, brand, template, refs}, the index of the next
 * step, each finished step's outcome) advanced by one "automation.step" job per step:
 * the job runs the step, then commits the step's outcome, the run's new state and the
 * next step's job in one transaction. The exception is a first step of a pure type
 * (send, send-list, delay): automation_start takes it in the transaction that starts
 * the run, with the same outcome. A crash repeats at most the step in flight, and a
 * send step's message id derives from (run, step), so a repeated send finds its message
 * instead of making a second one.
 *
 * Steps: send (legacy fields or v2 `message`), delay (duration text / ISO 8601, or
 * until), cancel (by cancelation token), fetch-data (HTTP, merged into data), update-
 * profile, get-profile, invoke (start another automation). Every step takes `if` (a
 * condition over data, profile, refs) and `ref` (its outcome saved as refs.<ref>).
 *
 * Documents: automations/<id>, automation_versions/<id>@<n>, runs/<run id>,
 * run_tokens/[token, run id], event_links/[event, automation], automation_links/
 * [automation, event], runs_by_automation/[automation, MAX - created, run id] (an index
 * written when a run of a stored automation starts). */
#ifndef HERALD_ENGINE_AUTOMATION_H
#define HERALD_ENGINE_AUTOMATION_H

#include "send.h"

#define AUTOMATION_STEP_KIND "automation.step"
#define AUTOMATION_MAX_STEPS 100
#define AUTOMATION_MAX_DEPTH 8      /* nested invokes below a run started by an event or the API */
#define AUTOMATION_MAX_TREE_RUNS 64 /* runs one root run may start through invokes, all levels */
#define AUTOMATION_ID_MAX 128       /* automation ids: 1 to 128 of [A-Za-z0-9_.:-] */

/* automation_validate: check a template {name?, steps, cancelation_token?}; HR_INVAL
 * with "steps[i]: reason". */
int automation_validate(const cJSON *def, struct herr *err);

/* automation_id_ok: id is 1 to AUTOMATION_ID_MAX characters of [A-Za-z0-9_.:-]. */
bool automation_id_ok(struct str id);

/* automation_check_cycles: inside t, refuse a definition that would invoke itself
 * forever: an invoke step whose literal template is `id`, or names an automation whose
 * own literal invoke steps name `id` (A -> B -> A). Targets given as accessors are only
 * known at run time (the depth and fan-out limits catch those). HR_INVAL with
 * "steps[i]: reason" in err; HR_OK; or a store error. */
int automation_check_cycles(struct store_txn *t, struct str id, const cJSON *def,
                            struct herr *err) HR_MUSTCHECK;

/* automation_put: create or replace automation id with def (validated), making version
 * n+1; *out_version gets it. Inside t. */
int automation_put(struct store_txn *t, struct str id, const cJSON *def, int64_t now,
                   int64_t *out_version) HR_MUSTCHECK;
/* automation_delete: remove automation id and its links (runs keep their version). */
int automation_delete(struct store_txn *t, struct str id) HR_MUSTCHECK;

/* automation_start: inside t, start a run. `def` is an automation template (its
 * steps), `automation_id`/`version` name it (NULL/0 for ad hoc steps), `context` is the
 * initial {data, profile, recipient, brand, template} (copied), `run_id` the new run's
 * id (HR_CONFLICT when it exists: the run was started already), `source` (may be NULL)
 * recorded on the run. A pure first step (send, send-list, delay) is taken in t, its
 * effects included; any other first step is enqueued as a job. data_event > 0 (with
 * e->event_data set): context's data is e->event_data of that stored event, so the run
 * and its send steps' messages keep a reference instead of copies (derived again when
 * loaded) until a step replaces the data; 0: they keep copies. */
int automation_start(struct engine *e, struct store_txn *t, const cJSON *def,
                     const char *automation_id, int64_t version, const cJSON *context,
                     const char *run_id, const cJSON *source, int64_t data_event)
    HR_MUSTCHECK;
/* automation_start_by_id: the same, with the latest committed version of automation_id
 * (read without locking it). HR_NOTFOUND when there is none. */
int automation_start_by_id(struct engine *e, struct store_txn *t, struct str automation_id,
                           const cJSON *context, const char *run_id, const cJSON *source)
    HR_MUSTCHECK;

/* automation_run_get: run run_id as stored (*out, new, caller owns), with its data
 * derived again from its event when it keeps a reference (see automation_start).
 * HR_NOTFOUND when there is none, HR_INVAL when its event is gone or unreadable (for
 * good), else a store error. Reads committed state, not inside a transaction. */
int automation_run_get(struct engine *e, struct str run_id, cJSON **out) HR_MUSTCHECK;

/* automation_runs_recent: the ids of automation_id's runs, newest first, at most limit,
 * as a JSON array of strings (caller owns). Runs of ad hoc steps are not indexed. */
int automation_runs_recent(struct store *s, struct str automation_id, size_t limit,
                           cJSON **out);

/* automation_trigger: the ingest hook. For a stored event named `name` (catalog name)
 * with id event_id, received at received_ms, and run data `data` (the event with its
 * properties also at the top level), start every automation linked to the name, once per
 * event (the run id derives from the event and the automation, its time part from
 * received_ms). Inside t. */
int automation_trigger(void *engine, struct store_txn *t, const cJSON *data, const char *name,
                       int64_t event_id, int64_t received_ms);

/* automation_trigger_event: the same from the event itself: data_new(event) builds the
 * run data (new; called only when something is linked to name, and owned here). The
 * ingest hook (main wires it), so an event nothing is linked to costs no copy. stored:
 * event is the body stored under event_id as it is; then, when data_new is the engine's
 * event_data, the runs refer to the event for their data (automation_start's
 * data_event). */
int automation_trigger_event(void *engine, struct store_txn *t, const cJSON *event,
                             bool stored, cJSON *(*data_new)(const cJSON *event),
                             const char *name, int64_t event_id, int64_t received_ms);

/* automation_link / unlink: inside t. unlink returns HR_NOTFOUND when absent. */
int automation_link(struct store_txn *t, struct str event, struct str automation, int64_t now)
    HR_MUSTCHECK;
int automation_unlink(struct store_txn *t, struct str event, struct str automation)
    HR_MUSTCHECK;
/* automation_links: links of an event (by_event) or of an automation, as a JSON array of
 * {event, automation_id, created} (caller owns). */
int automation_links(struct store *s, struct str key, bool by_event, cJSON **out);

/* automation_parse_duration: "5 minutes", "1 hour", "3 days", "30s", "PT5M", "P1DT2H",
 * or a number of ms as text -> ms. HR_INVAL when unreadable. */
int automation_parse_duration(const char *s, int64_t *out_ms);

/* automation_step_prepare: the pure half of running a step: evaluate raw's `if` against
 * ctx (*skipped true when false), resolve its accessors, and check what resolution
 * brought into string uses (invoke's template is an automation id; fetch-data's url is
 * http(s) without spaces or controls and its method one of GET POST PUT PATCH DELETE).
 * On HR_OK *out is the resolved step (caller owns; NULL when skipped). HR_INVAL or
 * HR_TOOBIG with the step's error in err. No I/O; any thread. */
int automation_step_prepare(const cJSON *raw, const cJSON *ctx, cJSON **out, bool *skipped,
                            struct herr *err) HR_MUSTCHECK;

/* The job handler (ctx: struct engine *). */
void automation_step_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r);

#endif
