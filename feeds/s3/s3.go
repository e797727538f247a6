package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/nopii/nopii/feeds/lake"
)

// Limits and defaults of Options.
const (
	// MinPartSize is S3's smallest part of a multipart upload (but the last).
	MinPartSize = 5 << 20
	// MaxPartSize is S3's largest part.
	MaxPartSize = 5 << 30
	// MaxParts is S3's limit of parts per upload: an object can be at most
	// MaxParts × PartSize bytes.
	MaxParts = 10000

	DefaultPartSize   = 8 << 20
	DefaultRetries    = 5
	DefaultMaxBackoff = 20 * time.Second
	// DefaultResponseTimeout bounds the wait for a response once a request
	// is sent: long enough for a server to store an 8 MiB part, short
	// enough that a stalled server costs a retry, not a hung run.
	DefaultResponseTimeout = 2 * time.Minute
	// DefaultRegion is used when neither Options nor the environment name
	// one: S3's own default, and what S3-compatible servers expect.
	DefaultRegion = "us-east-1"
)

// Batch sizes of the S3 API: a ListObjectsV2 page and a DeleteObjects call
// hold at most 1000 keys.
const (
	listPageSize    = 1000
	deleteBatchSize = 1000
)

// abortTimeout bounds the clean-up after a failed or abandoned upload. It
// runs without the caller's cancellation: the caller may have failed
// precisely because its context was cancelled.
const abortTimeout = time.Minute

// Options configures a Store. Bucket is required; everything else has a
// default.
type Options struct {
	Bucket string
	// Prefix is prepended to every key; a slash is added when it lacks one.
	Prefix string
	// Region defaults to the AWS environment's, else DefaultRegion.
	Region string
	// Endpoint is the URL of an S3-compatible server. Buckets are then
	// addressed path-style (http://host/bucket/key), and request checksums
	// are sent only where the API requires them, as many such servers
	// reject the newer flexible checksums. Empty means AWS S3.
	Endpoint string
	// SSE asks for server-side encryption of every object: "" (the
	// bucket's default), "AES256" or "aws:kms" with SSEKMSKeyID (empty for
	// the AWS managed key).
	SSE         string
	SSEKMSKeyID string
	// AccessKeyID and SecretAccessKey are static credentials; without them
	// the AWS default credential chain applies.
	AccessKeyID     string
	SecretAccessKey string
	// PartSize is the multipart chunk: the bytes a writer keeps in memory
	// and sends per UploadPart. At least MinPartSize; DefaultPartSize if 0.
	PartSize int64
	// Retries bounds the attempts per request, the first one included;
	// DefaultRetries if 0, and 1 means no retry.
	Retries int
	// MaxBackoff caps the exponential backoff between attempts;
	// DefaultMaxBackoff if 0.
	MaxBackoff time.Duration
	// Logger gets retries, failed clean-ups and the SDK's warnings;
	// slog.Default() if nil.
	Logger *slog.Logger
	// ResponseTimeout bounds the wait for a response's headers after a
	// request was sent; a request that times out is retried like a 5xx.
	// DefaultResponseTimeout if 0. Ignored with HTTPClient.
	ResponseTimeout time.Duration
	// HTTPClient sends the requests; the SDK's default client, with
	// ResponseTimeout, if nil.
	HTTPClient *http.Client
}

// Store is a lake.Store on an S3 bucket. Its methods are safe for
// concurrent use; an ObjectWriter it returns is not.
type Store struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ending in "/"
	sse      types.ServerSideEncryption
	kmsKeyID *string
	partSize int64
	log      *slog.Logger

	// Batch sizes, variables so that tests can page with a handful of keys.
	listPageSize    int32
	deleteBatchSize int
}

var _ lake.Store = (*Store)(nil)

// NewStore checks o and returns a Store. It does not contact the server;
// the first request does, and fails if the bucket or credentials are
// wrong.
func NewStore(ctx context.Context, o Options) (*Store, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("s3 feed %s: %w", describe(o.Bucket, normPrefix(o.Prefix)), err)
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Store{
		bucket:          o.Bucket,
		prefix:          normPrefix(o.Prefix),
		sse:             types.ServerSideEncryption(o.SSE),
		partSize:        o.PartSize,
		listPageSize:    listPageSize,
		deleteBatchSize: deleteBatchSize,
	}
	if o.SSEKMSKeyID != "" {
		s.kmsKeyID = aws.String(o.SSEKMSKeyID)
	}
	s.log = log.With("store", s.Describe())

	loadOpts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithLogger(sdkLogger{s.log}),
		awsconfig.WithRetryer(func() aws.Retryer {
			std := retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = o.Retries
				so.MaxBackoff = o.MaxBackoff
				// The client-wide retry quota would turn a burst of failures
				// in one big upload into failures of everything else; the
				// attempts are bounded per request anyway.
				so.RateLimiter = ratelimit.None
				so.Retryables = append(so.Retryables, retry.RetryableHTTPStatusCode{
					Codes: map[int]struct{}{http.StatusTooManyRequests: {}},
				})
			})
			return loggingRetryer{RetryerV2: std, log: s.log}
		}),
	}
	if o.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(o.Region))
	}
	if o.AccessKeyID != "" {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, "")))
	}
	if o.HTTPClient != nil {
		loadOpts = append(loadOpts, awsconfig.WithHTTPClient(o.HTTPClient))
	} else {
		timeout := o.ResponseTimeout
		if timeout == 0 {
			timeout = DefaultResponseTimeout
		}
		loadOpts = append(loadOpts, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(
			func(tr *http.Transport) { tr.ResponseHeaderTimeout = timeout })))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3 feed %s: load AWS configuration: %w", s.Describe(), err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	s.client = s3.NewFromConfig(cfg, func(so *s3.Options) {
		// The SDK warns on every GetObject whose response has no checksum
		// it knows, which is most of them on S3-compatible servers.
		so.DisableLogOutputChecksumValidationSkipped = true
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
			so.UsePathStyle = true
			// SigV4 still signs the SHA-256 of every body, so the server
			// verifies what it got; only the x-amz-checksum-* headers and
			// aws-chunked trailers, which several S3-compatible servers
			// reject, are left out.
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	return s, nil
}

// Server-side encryption modes of Options.SSE.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

func (o *Options) check() error {
	var errs []error
	if o.Bucket == "" {
		errs = append(errs, errors.New("bucket is required"))
	} else if strings.ContainsAny(o.Bucket, "/:") {
		errs = append(errs, fmt.Errorf("%q is not a bucket name", o.Bucket))
	}
	switch o.SSE {
	case "", SSEAES256, SSEKMS:
	default:
		errs = append(errs, fmt.Errorf("sse %q: want %s or %s", o.SSE, SSEAES256, SSEKMS))
	}
	if o.SSEKMSKeyID != "" && o.SSE != SSEKMS {
		errs = append(errs, fmt.Errorf("an SSE KMS key id needs sse %s", SSEKMS))
	}
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
		errs = append(errs, errors.New("access key id and secret access key go together: set both, or neither for the AWS default credentials"))
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Not the parse error: the URL could hold user:password.
			errs = append(errs, errors.New("endpoint must be an http:// or https:// URL with a host"))
		}
	}
	if o.PartSize != 0 && (o.PartSize < MinPartSize || o.PartSize > MaxPartSize) {
		errs = append(errs, fmt.Errorf("part size %d: want %d (5 MiB) to %d (5 GiB) bytes", o.PartSize, MinPartSize, MaxPartSize))
	}
	if o.Retries < 0 {
		errs = append(errs, fmt.Errorf("retries %d: want at least 1, or 0 for the default", o.Retries))
	}
	if o.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("max backoff %s: want a positive duration, or 0 for the default", o.MaxBackoff))
	}
	return errors.Join(errs...)
}

// normPrefix returns prefix without leading slashes and, unless empty,
// with a trailing one.
func normPrefix(prefix string) string {
	prefix = strings.TrimLeft(prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return prefix
}

func describe(bucket, prefix string) string {
	if prefix == "" {
		return "s3://" + bucket
	}
	return "s3://" + bucket + "/" + strings.TrimSuffix(prefix, "/")
}

// Describe returns s3://bucket/prefix.
func (s *Store) Describe() string { return describe(s.bucket, s.prefix) }

// url names an object in errors and logs.
func (s *Store) url(key string) string { return "s3://" + s.bucket + "/" + s.prefix + key }

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("invalid key %q: want a relative path of an object", key)
	}
	return nil
}

// Create starts writing the object key. Nothing is sent until the first
// part fills or Commit is called; ctx governs every request the writer
// makes, except the clean-up of Abort.
func (s *Store) Create(ctx context.Context, key string) (lake.ObjectWriter, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("create %s: %w", s.url(key), err)
	}
	return &objectWriter{s: s, ctx: ctx, key: key}, nil
}

// Get opens the object key. It returns an error wrapping lake.ErrNotExist
// when there is none.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("get %s: %w", s.url(key), err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("get %s: %w", s.url(key), lake.ErrNotExist)
		}
		return nil, fmt.Errorf("get %s: %w", s.url(key), err)
	}
	return out.Body, nil
}

// isNotFound reports a missing key, as opposed to a missing bucket.
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// List returns the keys under prefix (relative to the store's prefix),
// sorted. Keys ending in a slash, the "folders" that consoles create, are
// not objects a lake wrote and are left out.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(s.prefix + prefix),
		MaxKeys: aws.Int32(s.listPageSize),
	})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.url(prefix), err)
		}
		for _, obj := range page.Contents {
			k := aws.ToString(obj.Key)
			if !strings.HasPrefix(k, s.prefix) || strings.HasSuffix(k, "/") {
				continue
			}
			keys = append(keys, strings.TrimPrefix(k, s.prefix))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Delete removes the objects keys, up to 1000 per DeleteObjects request.
// Missing keys are not an error. A failure names the keys that could not
// be deleted (the first few of them).
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := checkKey(key); err != nil {
			return fmt.Errorf("delete %s: %w", s.url(key), err)
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), s.deleteBatchSize)
		batch := keys[:n]
		keys = keys[n:]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, key := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(s.prefix + key)}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			if len(batch) == 1 {
				return fmt.Errorf("delete %s: %w", s.url(batch[0]), err)
			}
			return fmt.Errorf("delete %d objects from %s (%s …): %w", len(batch), s.Describe(), s.url(batch[0]), err)
		}
		if err := s.deleteErrors(out.Errors); err != nil {
			return err
		}
	}
	return nil
}

// deleteErrors turns the per-key failures of a DeleteObjects response into
// one error, leaving out keys that were already gone.
func (s *Store) deleteErrors(errs []types.Error) error {
	const show = 5
	var msgs []string
	failed := 0
	for _, e := range errs {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		failed++
		if len(msgs) < show {
			msgs = append(msgs, fmt.Sprintf("s3://%s/%s: %s: %s", s.bucket, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
		}
	}
	switch {
	case failed == 0:
		return nil
	case failed == 1:
		return fmt.Errorf("delete %s", msgs[0])
	case failed > show:
		msgs = append(msgs, fmt.Sprintf("and %d more", failed-show))
	}
	return fmt.Errorf("delete %d objects from %s: %s", failed, s.Describe(), strings.Join(msgs, "; "))
}
