package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// objectWriter buffers an object and uploads it: in one PutObject when it
// fits in a part, else part by part in a multipart upload. It sends a
// full buffer only once more bytes arrive, so that an object of exactly
// PartSize bytes still goes up in one request.
type objectWriter struct {
	s   *Store
	ctx context.Context
	key string // relative to the store's prefix

	buf      []byte // the part being filled; grows up to s.partSize
	uploadID *string
	parts    []types.CompletedPart

	err  error // sticky: the first failure, after which the upload is gone
	done bool  // committed, aborted or failed
}

var errClosed = errors.New("object writer already committed or aborted")

// Write buffers p, uploading parts as they fill. After a failure the
// upload is aborted, and every later call returns the same error.
func (w *objectWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, fmt.Errorf("write %s: %w", w.s.url(w.key), errClosed)
	}
	n := 0
	for len(p) > 0 {
		if int64(len(w.buf)) == w.s.partSize {
			if err := w.flush(); err != nil {
				return n, w.fail(err)
			}
		}
		k := min(len(p), int(w.s.partSize)-len(w.buf))
		w.grow(k)
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		n += k
	}
	return n, nil
}

// grow makes room for n more bytes, doubling the buffer up to a part: most
// objects a lake writes (manifests, state, small tables) are far below a
// part and should not cost one.
func (w *objectWriter) grow(n int) {
	if len(w.buf)+n <= cap(w.buf) {
		return
	}
	size := min(w.s.partSize, int64(max(2*cap(w.buf), len(w.buf)+n, 64<<10)))
	buf := make([]byte, len(w.buf), size)
	copy(buf, w.buf)
	w.buf = buf
}

// flush uploads the buffer as the next part, starting the multipart upload
// on the first one.
func (w *objectWriter) flush() error {
	if len(w.parts) == MaxParts {
		return fmt.Errorf("upload %s: more than %d parts of %d bytes: raise the part size", w.s.url(w.key), MaxParts, w.s.partSize)
	}
	if w.uploadID == nil {
		out, err := w.s.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket:               aws.String(w.s.bucket),
			Key:                  aws.String(w.s.prefix + w.key),
			ServerSideEncryption: w.s.sse,
			SSEKMSKeyId:          w.s.kmsKeyID,
		})
		if err != nil {
			return fmt.Errorf("start upload of %s: %w", w.s.url(w.key), err)
		}
		w.uploadID = out.UploadId
	}
	num := int32(len(w.parts) + 1)
	out, err := w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{
		Bucket:     aws.String(w.s.bucket),
		Key:        aws.String(w.s.prefix + w.key),
		UploadId:   w.uploadID,
		PartNumber: aws.Int32(num),
		// A bytes.Reader seeks, so the SDK rewinds it for every retry.
		Body:          bytes.NewReader(w.buf),
		ContentLength: aws.Int64(int64(len(w.buf))),
	})
	if err != nil {
		return fmt.Errorf("upload part %d of %s: %w", num, w.s.url(w.key), err)
	}
	w.parts = append(w.parts, types.CompletedPart{
		PartNumber:     aws.Int32(num),
		ETag:           out.ETag,
		ChecksumCRC32:  out.ChecksumCRC32,
		ChecksumCRC32C: out.ChecksumCRC32C,
		ChecksumSHA1:   out.ChecksumSHA1,
		ChecksumSHA256: out.ChecksumSHA256,
	})
	w.buf = w.buf[:0]
	return nil
}

// Commit uploads what is left and makes the object visible, whole. When it
// fails, the multipart upload is aborted: no object and no upload remain.
func (w *objectWriter) Commit() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("commit %s: %w", w.s.url(w.key), errClosed)
	}
	if w.uploadID == nil {
		_, err := w.s.client.PutObject(w.ctx, &s3.PutObjectInput{
			Bucket:               aws.String(w.s.bucket),
			Key:                  aws.String(w.s.prefix + w.key),
			Body:                 bytes.NewReader(w.buf),
			ContentLength:        aws.Int64(int64(len(w.buf))),
			ServerSideEncryption: w.s.sse,
			SSEKMSKeyId:          w.s.kmsKeyID,
		})
		if err != nil {
			// A PutObject is atomic: nothing to clean up.
			return w.fail(fmt.Errorf("put %s: %w", w.s.url(w.key), err))
		}
		w.finish()
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return w.fail(err)
		}
	}
	_, err := w.s.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(w.s.bucket),
		Key:             aws.String(w.s.prefix + w.key),
		UploadId:        w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
	})
	if err != nil {
		return w.fail(fmt.Errorf("complete upload of %s: %w", w.s.url(w.key), err))
	}
	w.finish()
	return nil
}

// Abort discards the object and aborts its multipart upload, if one was
// started. It is a no-op after Commit or a failure (which aborted already).
func (w *objectWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.buf = nil
	if w.uploadID == nil {
		return nil
	}
	return w.abortUpload()
}

// fail records err, aborts the multipart upload and returns err, joined
// with the abort's own failure if that failed too.
func (w *objectWriter) fail(err error) error {
	w.done = true
	w.buf = nil
	if w.uploadID != nil {
		if aerr := w.abortUpload(); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	w.err = err
	return err
}

func (w *objectWriter) finish() {
	w.done = true
	w.buf = nil
}

// abortUpload aborts the multipart upload, even when the writer's context
// is cancelled. An upload that is already gone counts as aborted.
func (w *objectWriter) abortUpload() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), abortTimeout)
	defer cancel()
	id := w.uploadID
	w.uploadID = nil
	_, err := w.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(w.s.bucket),
		Key:      aws.String(w.s.prefix + w.key),
		UploadId: id,
	})
	if err == nil {
		return nil
	}
	var nsu *types.NoSuchUpload
	var apiErr smithy.APIError
	if errors.As(err, &nsu) || (errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload") {
		// Gone already, or, after a CompleteMultipartUpload whose answer
		// was lost, completed: then the object exists although Commit
		// failed. Say so; deleting it could destroy an older object.
		w.s.log.Warn("multipart upload to abort not found: it was aborted, or completed despite the error",
			"key", w.s.url(w.key))
		return nil
	}
	w.s.log.Error("abort multipart upload failed: the upload stays until a lifecycle rule removes it",
		"key", w.s.url(w.key), "upload_id", aws.ToString(id), "error", err.Error())
	return fmt.Errorf("abort upload of %s: %w", w.s.url(w.key), err)
}
