// Package keepalive keeps a lock alive while a run holds it: it calls a
// renewal every interval, and stops it before the lock is released.
package keepalive

import (
	"sync"
	"time"
)

// Start calls tick every interval until tick returns false or the returned
// unlock is called. unlock waits for a tick in progress, then calls release
// once; what tick wrote is visible to release. Calling unlock again does
// nothing.
func Start(every time.Duration, tick func() bool, release func()) (unlock func()) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if !tick() {
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
			release()
		})
	}
}
