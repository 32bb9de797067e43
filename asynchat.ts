/**
 * Python's `asynchat`: {@linkcode AsyncChat} (terminator-driven protocols with
 * producers). Being written; see issue 3.
 *
 * @module
 */
export {};
