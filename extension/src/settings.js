// Settings of the reference extension.

export const SCHEMA_VERSION = 1;
/** The API a self-enrolled extension uses until its options page sets another. */
export const DEFAULT_API_URL = "https://api.rollcall.example";
/** The path of a self-enrolment link, which carries `?token=rce_...`. */
export const ENROLMENT_PATH = "/enrol";
/** The API accepts up to 100 events a request. */
export const EVENTS_PER_REQUEST = 50;
/** How long new events wait, so that events close together go in one request. */
export const FLUSH_DELAY_MS = 2000;
export const RETRY_BASE_MS = 1000;
export const RETRY_MAX_MS = 5 * 60 * 1000;
/** Events kept while the API is unreachable; older ones are dropped past this. */
export const MAX_QUEUED_EVENTS = 5000;
export const HEARTBEAT_MINUTES = 60;
