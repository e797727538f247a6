// Package config reads the workflow file of SPEC §1 into plain structs.
//
// One YAML file holds an agent's whole configuration: the HMAC key of the
// deterministic rules, the dashboard it reports to, and its workflows, each
// with the inputs (production databases and the tables to take from them,
// with a redaction rule per column) and the feeds it loads (a twin database,
// an S3 bucket, a local directory).
//
// [Load] and [Parse] work in three passes over the yaml.v3 node tree:
//
//  1. expand ${VAR} and ${VAR:-default} in scalar values from the environment
//     (see [Options.Getenv]);
//  2. decode the tree by hand into [Config], strictly: unknown keys,
//     duplicate keys and values of the wrong kind are errors;
//  3. validate what the decoded values mean together: names, modes, windows,
//     feeds, and whether hmac_key is needed.
//
// Every problem becomes an [*Error] carrying the file:line:column of the
// offending key or value and the dotted path of the field, and all problems
// found are reported at once, sorted by position, as [Errors]. Messages say
// what was expected; they never echo a secret (hmac_key, dsn, token,
// secret_access_key), which is held as a [Secret] so that printing a Config
// prints "[redacted]" in its place.
//
// The package does no I/O beyond reading the one file in [Load], has no
// package state, and knows nothing of the rule catalog: callers pass
// [Options.CheckRule] (normally from package rulesets) to check rule names
// and parameters.
package config
