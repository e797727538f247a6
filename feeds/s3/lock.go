package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/nopii/nopii/feeds/lake"
)

// The run lock uses S3's conditional writes (If-None-Match: * and If-Match
// on PutObject and DeleteObject): AWS S3 has them, and so has versitygw.
var _ lake.LockStore = (*Store)(nil)

// ReadVersion implements lake.LockStore: the version is the ETag.
//
// versitygw's posix backend can answer a GET that races a PUT with the body
// of one write and the ETag of the other, for a few milliseconds (measured:
// 72 of 200 reads racing writes), and a condition on that ETag would then
// overwrite a lease its reader never saw. So a body is taken with its ETag
// when the ETag is the body's MD5 (as S3 computes it for a PutObject), and
// otherwise only when the pair stays the same for a few reads 100 ms apart
// (an ETag that is not an MD5: SSE-KMS).
func (s *Store) ReadVersion(ctx context.Context, key string) ([]byte, string, error) {
	if err := checkKey(key); err != nil {
		return nil, "", fmt.Errorf("get %s: %w", s.url(key), err)
	}
	var lastData []byte
	var lastETag string
	same := 0
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, "", ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		data, etag, err := s.readOnce(ctx, key)
		if err != nil {
			return nil, "", err
		}
		sum := md5.Sum(data)
		if strings.Trim(etag, `"`) == hex.EncodeToString(sum[:]) {
			return data, etag, nil
		}
		if attempt > 0 && etag == lastETag && bytes.Equal(data, lastData) {
			if same++; same == 3 {
				return data, etag, nil
			}
		} else {
			same = 0
		}
		lastData, lastETag = data, etag
	}
	return nil, "", fmt.Errorf("get %s: its body and ETag keep changing: %w", s.url(key), lake.ErrConflict)
}

func (s *Store) readOnce(ctx context.Context, key string) ([]byte, string, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil {
		if isNotFound(err) {
			return nil, "", fmt.Errorf("get %s: %w", s.url(key), lake.ErrNotExist)
		}
		return nil, "", fmt.Errorf("get %s: %w", s.url(key), err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", s.url(key), err)
	}
	return data, aws.ToString(out.ETag), nil
}

// PutIf implements lake.LockStore with If-None-Match: * (no version) or
// If-Match: the ETag.
func (s *Store) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", fmt.Errorf("put %s: %w", s.url(key), err)
	}
	in := &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		ServerSideEncryption: s.sse, SSEKMSKeyId: s.kmsKeyID}
	if ifVersion == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifVersion)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		if failedCondition(err) {
			return "", fmt.Errorf("put %s: %w", s.url(key), lake.ErrConflict)
		}
		return "", fmt.Errorf("put %s: %w", s.url(key), err)
	}
	return aws.ToString(out.ETag), nil
}

// DeleteIf implements lake.LockStore with If-Match.
func (s *Store) DeleteIf(ctx context.Context, key, ifVersion string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("delete %s: %w", s.url(key), err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key),
		IfMatch: aws.String(ifVersion)})
	switch {
	case err == nil, isNotFound(err):
		return nil
	case failedCondition(err):
		return fmt.Errorf("delete %s: %w", s.url(key), lake.ErrConflict)
	}
	return fmt.Errorf("delete %s: %w", s.url(key), err)
}

// failedCondition reports a conditional request whose condition did not
// hold (412), or that raced another conditional write of the key (409).
func failedCondition(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	return false
}
