package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The fleet's message handlers: the status query, the scale and cancel
// updates and the cancel signal. Handlers change the fleet's state and set
// changed; the fill loop acts on it.

func (f *fleet) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (FleetStatus, error) {
		return f.status(ctx), nil
	}); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, InstancesQuery, func() ([]string, error) {
		return append([]string{}, f.st.InstanceIDs...), nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ScaleUpdate, f.scale, workflow.UpdateHandlerOptions{
		Validator: func(_ workflow.Context, in ScaleInput) error { return f.validateScale(in) },
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, CancelUpdate, f.cancel, workflow.UpdateHandlerOptions{
		Validator: func(_ workflow.Context, in CancelInput) error { return f.validateCancel(in) },
	}); err != nil {
		return err
	}
	events := workflow.GetSignalChannel(ctx, InstanceEventsSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var in InstanceEventsInput
			if more := events.Receive(ctx, &in); !more {
				return
			}
			f.applyEvents(ctx, in)
		}
	})
	signals := workflow.GetSignalChannel(ctx, CancelSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var in CancelInput
			if more := signals.Receive(ctx, &in); !more {
				return
			}
			f.requestCancel(in)
		}
	})
	return nil
}

// validateScale rejects a scale of a fleet that ended or is being
// cancelled, and a target outside [min, MaxFleetSize].
func (f *fleet) validateScale(in ScaleInput) error {
	if f.closed() {
		return fmt.Errorf("fleet %s is %s", f.in.FleetID, f.st.Phase)
	}
	if f.cancelReq != nil {
		return fmt.Errorf("fleet %s is being cancelled", f.in.FleetID)
	}
	return in.Validate(f.in.Min)
}

// validateCancel rejects a cancel of a fleet that ended otherwise; a second
// cancel of a cancelled fleet is accepted and answers like the first.
func (f *fleet) validateCancel(CancelInput) error {
	if f.closed() && f.st.Phase != PhaseCancelled {
		return fmt.Errorf("fleet %s is already %s", f.in.FleetID, f.st.Phase)
	}
	return nil
}

// closed reports whether the fleet takes no more scale or cancel: it
// reached a terminal state, except a maintained fleet that is fulfilled and
// keeps its target until it is cancelled.
func (f *fleet) closed() bool {
	if f.maintain && f.st.Phase == PhaseFulfilled && !f.stopping {
		return false
	}
	return f.terminal()
}

// scale is the ScaleUpdate handler. Raising the target returns at once; the
// fill loop launches the difference. Lowering it waits until the fill loop
// terminated the extra instances.
func (f *fleet) scale(ctx workflow.Context, in ScaleInput) (ScaleResult, error) {
	prev := f.st.Target
	f.st.Target = in.Target
	f.changed = true
	if f.maintain && in.Target > prev && f.st.Phase == PhaseFulfilled {
		f.setPhase(PhaseFilling) // fulfilled again once the new target runs
	}
	defer func() { f.changed = true }() // the fill loop waits for handlers before it ends
	f.log.Info("fleet scaled", "From", prev, "To", in.Target)
	if f.version(ctx, versionScaleMemo) >= 1 {
		// Listings read the target from the memo; keep it current.
		if err := workflow.UpsertMemo(ctx, map[string]any{MemoTarget: in.Target}); err != nil {
			f.log.Warn("updating the memo's target failed", "Error", err)
		}
	}
	if in.Target < prev {
		if err := workflow.Await(ctx, func() bool {
			live, _, _ := f.units()
			return live <= f.st.Target || f.surplus(live) == 0 || f.done || f.cancelReq != nil
		}); err != nil {
			return ScaleResult{}, err
		}
	}
	return ScaleResult{PreviousTarget: prev, Target: f.st.Target, Launched: len(f.st.InstanceIDs)}, nil
}

// cancel is the CancelUpdate handler: it returns once the fleet cleaned up,
// with an error if the instances could not all be terminated.
func (f *fleet) cancel(ctx workflow.Context, in CancelInput) (CancelResult, error) {
	f.requestCancel(in)
	defer func() { f.changed = true }()
	if err := workflow.Await(ctx, func() bool { return f.done }); err != nil {
		return CancelResult{}, err
	}
	if f.cleanupErr != nil {
		return f.cancelRes, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("fleet %s cancelled, but not all of its instances could be terminated", f.in.FleetID), ErrTypeFleetFailed, f.cleanupErr, f.cancelRes)
	}
	return f.cancelRes, nil
}

func (f *fleet) requestCancel(in CancelInput) {
	if f.cancelReq == nil {
		f.cancelReq = &in
		f.changed = true
		f.log.Info("fleet cancel requested", "Keep", in.Keep)
	}
}
