package events

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/gust-dev/gust/providers/sqsevents"
)

// run is one of tenant l's receivers (at most Config.Receivers); they
// share l's state. It ends when the router closes, when the tenant went
// IdleAfter without a Watch or Learn (the first to see that removes l; the
// others see it too and end), or, if it is not l's last receiver, when its
// long poll found nothing.
func (r *Router) run(l *loop) {
	defer r.wg.Done()
	var backoff time.Duration
	for {
		long := r.flowing(l)
		if r.idle(l) {
			return
		}
		wait := time.Duration(0)
		if long {
			// Long polls while events flow; a short one first, and after an
			// error, so that Watch learns at once that the queue is there.
			wait = sqsevents.WaitSeconds * time.Second
		}
		start := time.Now()
		res, err := r.cfg.Source.Poll(r.ctx, l.tenant, wait, func(ctx context.Context, evs []sqsevents.Event) error {
			return r.deliver(ctx, l.tenant, evs)
		})
		if r.ctx.Err() != nil {
			return
		}
		r.count(l.tenant, MetricReceived, res.Events)
		r.countIgnored(l.tenant, reasonNotEvent, res.Ignored)
		r.mu.Lock()
		wasFailing := l.failing
		l.failing = err != nil
		if err == nil {
			l.okAt = r.cfg.Now()
		}
		r.mu.Unlock()

		var pause time.Duration
		switch {
		case err != nil:
			backoff = min(max(2*backoff, r.cfg.MinBackoff), r.cfg.MaxBackoff)
			// Full jitter over the upper half, so the loops of many workers
			// do not retry in step.
			pause = backoff/2 + rand.N(backoff/2+1)
			if wasFailing {
				r.log.Debug("receiving instance events failed again", "tenant", l.tenant, "error", err, "retry_in", pause)
			} else {
				r.log.Warn("receiving instance events failed; fleets poll until it works again", "tenant", l.tenant, "error", err, "retry_in", pause)
			}
		case wasFailing:
			backoff = 0
			r.log.Info("receiving instance events again", "tenant", l.tenant)
		default:
			backoff = 0
			if res.Messages >= sqsevents.MaxMessages {
				r.grow(l) // a full batch: more may be waiting
			}
			if long && res.Messages == 0 {
				if r.shrink(l) {
					return
				}
				// A queue that answers a long poll at once must not
				// make the loop spin.
				pause = r.cfg.MinBackoff - time.Since(start)
			}
		}
		if pause > 0 && !r.sleep(pause) {
			return
		}
	}
}

// grow starts another receiver for l, unless it has Config.Receivers, or
// l or the router has stopped.
func (r *Router) grow(l *loop) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.loops[l.tenant] != l || l.receivers >= r.cfg.Receivers {
		return
	}
	l.receivers++
	r.wg.Add(1) // under r.mu, before Close can set closed and Wait
	go r.run(l)
}

// shrink reports whether the calling receiver may end, as l keeps
// another; if so it is no longer counted.
func (r *Router) shrink(l *loop) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l.receivers <= 1 {
		return false
	}
	l.receivers--
	return true
}

// flowing reports whether l's last poll succeeded.
func (r *Router) flowing(l *loop) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !l.failing && !l.okAt.IsZero()
}

// idle removes l from the loops if it went IdleAfter unused, under the
// lock Watch takes: a Watch either finds l before it is removed (and keeps
// it) or starts a new loop after.
func (r *Router) idle(l *loop) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.Now().Sub(l.lastUse) <= r.cfg.IdleAfter {
		return false
	}
	if r.loops[l.tenant] == l {
		delete(r.loops, l.tenant)
	}
	return true
}

// sleep pauses d, and reports false if the router closed meanwhile.
func (r *Router) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
