// Package s3 is the lake feed's store on an S3 bucket, or on any
// S3-compatible server (MinIO, Ceph, versitygw, R2 …) addressed path-style
// through an endpoint. It implements lake.Store; package lake does the
// layout, encodings and manifests on top of it.
//
// Objects are written the way SPEC §4 asks: visible whole or not at all.
// Create returns a writer that keeps up to PartSize bytes in memory; an
// object that fits goes up as one PutObject at Commit, a bigger one as a
// multipart upload whose parts go up as they fill and which Commit
// completes. Until then nothing is listed under the key. Abort, a failed
// part or a failed Commit aborts the multipart upload, so that no partial
// object and no in-progress upload (which S3 bills for and keeps forever
// without a lifecycle rule) are left behind.
//
// Every request is retried a bounded number of times, with exponential
// backoff and jitter, on 5xx responses, throttling (SlowDown, 429) and
// connection errors and timeouts. Request bodies are in-memory readers, so
// a retry sends the same bytes again. Errors name the operation, bucket and
// key (s3://bucket/key); credentials never appear in errors or logs.
//
// Credentials come from Options.AccessKeyID and SecretAccessKey when set,
// else from the AWS default chain: environment, shared files, web identity,
// ECS and EC2 instance roles.
package s3
