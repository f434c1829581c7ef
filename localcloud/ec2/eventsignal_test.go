package ec2

import (
	"slices"
	"testing"
	"time"
)

// TestEventSignalWakesAsManyAsTheEventsNeed: a commit of n events to an
// account wakes ceil(n/10) of its waiters, oldest first, and none of
// another account's; a due time wakes one waiter, once.
func TestEventSignalWakesAsManyAsTheEventsNeed(t *testing.T) {
	var s eventSignal
	var a []<-chan struct{}
	var cancels []func() bool
	for range 4 {
		ch, cancel := s.wait("a")
		a = append(a, ch)
		cancels = append(cancels, cancel)
	}
	b, cancelB := s.wait("b")
	defer cancelB()
	woken := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	s.note("a", 15)
	s.committed()
	got := []bool{woken(a[0]), woken(a[1]), woken(a[2]), woken(a[3]), woken(b)}
	if want := []bool{true, true, false, false, false}; !slices.Equal(got, want) {
		t.Fatalf("after 15 events to a: woken %v, want %v", got, want)
	}

	// A transaction that did not commit wakes no one.
	s.note("a", 3)
	s.settled()
	s.committed()
	if woken(a[2]) || woken(a[3]) {
		t.Fatal("a rolled-back transaction woke a waiter")
	}

	// A waiter that left is not woken in place of one that waits.
	cancels[2]()
	s.wake("a", 1)
	if !woken(a[3]) {
		t.Fatal("the one waiter left was not woken")
	}
	if woken(a[2]) {
		t.Fatal("a cancelled waiter was woken")
	}

	// A waiter that leaves with a wake-up it did not take says so, so
	// that it can be handed on; one that took it, or had none, does not.
	d1, cancelD1 := s.wait("a")
	d2, cancelD2 := s.wait("a")
	s.wake("a", 1)
	if !cancelD1() {
		t.Fatal("a waiter leaving with an untaken wake-up did not report it")
	}
	s.wake("a", 1)
	<-d2
	if cancelD2() {
		t.Fatal("a waiter that took its wake-up reported it untaken")
	}
	_ = d1

	c1, cancel1 := s.wait("a")
	defer cancel1()
	c2, cancel2 := s.wait("a")
	defer cancel2()
	s.wakeAt("a", time.Now().Add(time.Hour))
	s.wakeAt("a", time.Now().Add(20*time.Millisecond)) // the earlier stands
	select {
	case <-c1:
	case <-time.After(5 * time.Second):
		t.Fatal("the due time woke no waiter")
	}
	time.Sleep(50 * time.Millisecond)
	if woken(c2) {
		t.Fatal("the due time woke more than one waiter")
	}
}
